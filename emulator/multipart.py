"""A small streaming multipart/form-data parser (the ``cgi`` module is gone in 3.13).

File parts are written to disk chunk by chunk; other fields are kept in memory (capped).
"""

import re

CHUNK = 64 * 1024
MAX_FIELD = 64 * 1024
MAX_HEADER = 16 * 1024


class MultipartError(ValueError):
    pass


def boundary_from_content_type(ctype):
    m = re.search(r'boundary=(?:"([^"]+)"|([^;\s]+))', ctype or "", re.I)
    if not m:
        raise MultipartError("Missing multipart boundary.")
    return (m.group(1) or m.group(2)).encode("latin-1")


def _parse_part_headers(raw):
    headers = {}
    for line in raw.decode("utf-8", "replace").split("\r\n"):
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    disp = headers.get("content-disposition", "")
    params = {}
    for m in re.finditer(r';\s*([\w*-]+)=(?:"((?:[^"\\]|\\.)*)"|([^;]*))', disp):
        val = m.group(2) if m.group(2) is not None else (m.group(3) or "").strip()
        params[m.group(1).lower()] = val.replace('\\"', '"')
    return headers, params


def parse(chunks, boundary, open_file):
    """Parse a multipart body.

    ``chunks``: iterable of bytes. ``open_file(field_name, filename)`` returns a writable binary
    file object for a file part. Returns ``(fields, files)`` where ``fields`` maps name -> str and
    ``files`` maps name -> (filename, file object, size).
    """
    delim = b"--" + boundary
    sep = b"\r\n" + delim
    it = iter(chunks)
    buf = bytearray()
    eof = False

    def fill():
        nonlocal eof
        if eof:
            return False
        try:
            c = next(it)
        except StopIteration:
            eof = True
            return False
        buf.extend(c)
        return True

    fields, files = {}, {}
    # preamble: find the first delimiter
    while True:
        i = buf.find(delim)
        if i >= 0:
            del buf[: i + len(delim)]
            break
        if len(buf) > len(delim):
            del buf[: len(buf) - len(delim)]
        if not fill():
            raise MultipartError("Multipart boundary not found.")
    while True:
        while len(buf) < 2:
            if not fill():
                raise MultipartError("Truncated multipart body.")
        if buf[:2] == b"--":
            break  # closing delimiter
        # part headers
        while True:
            j = buf.find(b"\r\n\r\n")
            if j >= 0:
                break
            if len(buf) > MAX_HEADER:
                raise MultipartError("Multipart part headers too large.")
            if not fill():
                raise MultipartError("Truncated multipart headers.")
        head = bytes(buf[:j])
        del buf[: j + 4]
        if head.startswith(b"\r\n"):
            head = head[2:]
        headers, params = _parse_part_headers(head)
        name = params.get("name")
        filename = params.get("filename")
        sink = open_file(name, filename) if filename is not None else None
        field = bytearray()
        size = 0
        while True:
            k = buf.find(sep)
            if k >= 0:
                data = bytes(buf[:k])
                del buf[: k + len(sep)]
                done = True
            else:
                keep = len(sep) - 1
                data = bytes(buf[:-keep]) if len(buf) > keep else b""
                del buf[: len(data)]
                done = False
            if data:
                size += len(data)
                if sink is not None:
                    sink.write(data)
                else:
                    field.extend(data)
                    if len(field) > MAX_FIELD:
                        raise MultipartError("Form field %r too large." % name)
            if done:
                break
            if not fill():
                raise MultipartError("Truncated multipart body.")
        if sink is not None:
            files[name] = (filename, sink, size)
        elif name is not None:
            fields[name] = field.decode("utf-8", "replace")
    # drain the epilogue
    while fill():
        buf.clear()
    return fields, files
