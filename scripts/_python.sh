# Sourced by scripts/run and scripts/test: sets $PY to a CPython >= 3.12 and creates .venv with it.
find_python() {
  local candidates=(python3.12 python3.13 python3.14 "$HOME/.pyenv/versions/3.12.1/bin/python" "$HOME/.pyenv/versions/3.13.0/bin/python" python3)
  for c in "${candidates[@]}"; do
    if command -v "$c" >/dev/null 2>&1 && "$c" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' 2>/dev/null; then
      PY=$(command -v "$c"); return 0
    fi
  done
  echo "error: Python 3.12 or newer is required (Django 6). Install it and try again." >&2
  return 1
}
ensure_venv() {
  local requirements=$1
  find_python
  if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)'; then
    rm -rf .venv
    "$PY" -m venv .venv
  fi
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -r "$requirements"
}
