"""python -m emulator --host 127.0.0.1 --port 8100 --api-key sk-emulator --speed 1.0 [--no-seed] ...

See emulator/README.md for every flag.
"""

import argparse
import signal
import sys
import threading

from .server import LABEL_RE, EmulatorServer


def _labelled(values):
    """[(label or None, value)] from 'value' or 'label=value' strings."""
    out = []
    for v in values:
        label, sep, rest = v.partition("=")
        if sep and not v.startswith(("sk-", "whsec_")) and LABEL_RE.match(label):
            out.append((label, rest))
        else:
            out.append((None, v))
    return out


def parse_keys(args):
    """({label: key} or None for any key, generated) from --api-key / --projects / --any-key."""
    if args.projects is not None:
        if args.api_key:
            raise SystemExit("--projects and --api-key cannot be combined")
        if args.projects < 1:
            raise SystemExit("--projects must be at least 1")
        return {"project%d" % i: "sk-emulator-%d" % i for i in range(1, args.projects + 1)}, True
    values = args.api_key or ["sk-emulator"]
    keys = {}
    for i, (label, key) in enumerate(_labelled(values), start=1):
        label = label or "project%d" % i
        if label in keys:
            raise SystemExit("project label %r is given twice" % label)
        keys[label] = key or "sk-emulator"
    return keys, False


def parse_provider_keys(values, prefix):
    """{label: key} from --anthropic-key / --azure-key values (unnamed ones are prefix1..N)."""
    keys = {}
    for i, (label, key) in enumerate(_labelled(values or []), start=1):
        label = label or "%s%d" % (prefix, i)
        if label in keys or not key:
            raise SystemExit("--%s-key %r: each needs a distinct label and a non-empty key" % (prefix, label))
        keys[label] = key
    return keys


def parse_azure_options(values):
    """{label: {"quirks", "fail_fast", "expire"}} from LABEL=quirks,fail_fast,no-expire values."""
    out = {}
    for v in values or []:
        label, sep, rest = v.partition("=")
        if not sep or not LABEL_RE.match(label):
            raise SystemExit("--azure-option needs LABEL=quirks,fail_fast,no-expire (got %r)" % v)
        options = out.setdefault(label, {})
        for word in filter(None, rest.split(",")):
            if word not in ("quirks", "fail_fast", "no-expire"):
                raise SystemExit("--azure-option: unknown option %r (quirks, fail_fast, no-expire)" % word)
            options["expire" if word == "no-expire" else word] = word != "no-expire"
    return out


def parse_queue_tokens(values):
    """{model: tokens} from MODEL=TOKENS values."""
    out = {}
    for v in values or []:
        model, sep, tokens = v.rpartition("=")
        if not sep or not model or not tokens.replace("_", "").isdigit() or int(tokens) < 1:
            raise SystemExit("--queue-tokens needs MODEL=TOKENS with a positive whole number (got %r)" % v)
        out[model] = int(tokens)
    return out


def parse_secrets(values):
    """One secret for all projects, or {label: secret}."""
    pairs = _labelled(values)
    if len(pairs) == 1 and pairs[0][0] is None:
        return pairs[0][1]
    if any(label is None for label, _ in pairs):
        raise SystemExit("with several --webhook-secret values, each must be label=whsec_...")
    return dict(pairs)


def build_parser():
    p = argparse.ArgumentParser(prog="python -m emulator", description="Batch API emulator: OpenAI (Batch + Files), Azure OpenAI and Anthropic Message Batches shapes")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8100)
    p.add_argument("--api-key", action="append", metavar="[LABEL=]KEY",
                   help="an accepted bearer token, one project each (repeatable; labels default to project1..N; "
                        "'' = sk-emulator)")
    p.add_argument("--projects", type=int, metavar="N",
                   help="N projects with generated keys sk-emulator-1..N (printed at start-up)")
    p.add_argument("--any-key", action="store_true", help="accept any other bearer token as the first project")
    p.add_argument("--speed", type=float, default=1.0, help="clock speed multiplier")
    p.add_argument("--no-seed", action="store_true", help="start without the ~65 hand-planned seeded batches")
    p.add_argument("--seed-count", type=int, default=0, metavar="N",
                   help="add N cheap bulk batches per OpenAI project (over the past 60 days)")
    p.add_argument("--seed-unfinished", type=int, default=10, metavar="M",
                   help="how many of the --seed-count batches are still running (default 10)")
    p.add_argument("--webhook-url", metavar="URL", help="POST signed batch.* events here ({project} = label)")
    p.add_argument("--webhook-secret", action="append", metavar="[LABEL=]whsec_...",
                   help="signing secret: once for every project, or label=whsec_... per project (repeatable)")
    p.add_argument("--anthropic-key", action="append", metavar="[LABEL=]KEY",
                   help="a project served as Anthropic's Message Batches API (repeatable)")
    p.add_argument("--azure-key", action="append", metavar="[LABEL=]KEY",
                   help="a project served as Azure OpenAI (versioned /openai/... and /openai/v1/...; repeatable)")
    p.add_argument("--azure-option", action="append", metavar="LABEL=quirks,fail_fast,no-expire",
                   help="options of an Azure project: tolerant-parsing quirks, create-time 400 token_limit_exceeded, "
                        "no 24 h expiry")
    p.add_argument("--admin-key", action="append", metavar="KEY",
                   help="an admin key for /v1/organization/costs and /usage/completions (repeatable)")
    p.add_argument("--queue-tokens", action="append", metavar="MODEL=TOKENS",
                   help="enqueued-token limit per project for a model (repeatable), e.g. gpt-4o-mini=2000000")
    p.add_argument("--fail-percent", type=int, default=5, metavar="P",
                   help="percent of requests that fail at random: 400s by custom_id, transient 500s by custom_id "
                        "and batch (default 5)")
    p.add_argument("--cost-skew", type=float, default=1.0, metavar="X",
                   help="multiply the Admin API's billed costs by X (drift demos; default 1.0)")
    p.add_argument("--verbose", action="store_true", help="log every request to stderr")
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    keys, generated = parse_keys(args)
    secrets = parse_secrets(args.webhook_secret) if args.webhook_secret else None
    if args.webhook_url and not secrets:
        raise SystemExit("--webhook-url needs --webhook-secret")
    try:
        srv = EmulatorServer(host=args.host, port=args.port, api_keys=keys, any_key=args.any_key, speed=args.speed,
                             seed=not args.no_seed, verbose=args.verbose, seed_count=args.seed_count,
                             seed_unfinished=args.seed_unfinished, webhook_url=args.webhook_url,
                             webhook_secrets=secrets,
                             anthropic_keys=parse_provider_keys(args.anthropic_key, "anthropic"),
                             azure_keys=parse_provider_keys(args.azure_key, "azure"),
                             azure_options=parse_azure_options(args.azure_option), admin_keys=args.admin_key,
                             queue_tokens=parse_queue_tokens(args.queue_tokens), fail_percent=args.fail_percent,
                             cost_skew=args.cost_skew)
    except ValueError as e:
        raise SystemExit(str(e))
    stop = threading.Event()

    def on_signal(signum, frame):
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    srv.start()
    print("emulator listening on %s" % srv.base_url, flush=True)
    if generated:
        for label, key in keys.items():
            print("project %s: api key %s" % (label, key), flush=True)
    if args.webhook_url:
        for label, url in srv.state.webhook_urls.items():
            print("project %s: webhooks to %s" % (label, url), flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        srv.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
