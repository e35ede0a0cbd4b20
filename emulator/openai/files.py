"""``/v1/files``: upload (streamed multipart), list, retrieve, delete, content (NOTES.md §1.5).

Azure serves the same handlers with its own ``expires_after`` range (``emulator/azure.py``).
"""

import os

from .. import multipart
from ..core.model import FILE_PURPOSES
from ..http import ApiError

EXPIRES_AFTER_RANGE = (3600, 2592000)


def _not_found(fid):
    return ApiError(404, "No such File object: %s" % fid[:128], param="id")


def _cleanup(opened):
    for p, fh in opened:
        try:
            fh.close()
            os.unlink(p)
        except OSError:
            pass


def _expires_at(req, fields, seconds_range):
    if "expires_after[seconds]" not in fields:
        return "default"
    try:
        secs = int(fields["expires_after[seconds]"])
    except ValueError:
        secs = -1
    low, high = seconds_range
    if not low <= secs <= high or fields.get("expires_after[anchor]", "created_at") != "created_at":
        raise ApiError(400, "Invalid 'expires_after': seconds must be between %d and %d and anchor 'created_at'."
                       % (low, high), param="expires_after", code="invalid_value")
    return int(req.state.now()) + secs


def upload_file(req, seconds_range=EXPIRES_AFTER_RANGE):
    ctype = req.headers.get("Content-Type") or ""
    if not ctype.lower().startswith("multipart/form-data"):
        raise ApiError(400, "Invalid Content-Type header (%s), expected multipart/form-data." % ctype[:100])
    try:
        boundary = multipart.boundary_from_content_type(ctype)
    except multipart.MultipartError as e:
        raise ApiError(400, str(e)) from None
    opened = []

    def open_file(name, filename):
        p = req.state.new_file_path()
        fh = open(p, "wb")
        opened.append((p, fh))
        return fh

    try:
        fields, files = multipart.parse(req.body_chunks(), boundary, open_file)
    except multipart.MultipartError as e:
        req.close_connection = True
        _cleanup(opened)
        raise ApiError(400, str(e)) from None
    except BaseException:
        _cleanup(opened)
        raise
    for _, fh in opened:
        fh.close()
    keep = files.get("file")
    for p, fh in opened:
        if keep is None or fh is not keep[1]:
            try:
                os.unlink(p)
            except OSError:
                pass
    purpose = fields.get("purpose")
    unknown = [k for k in list(fields) + list(files)
               if k not in ("file", "purpose", "expires_after[anchor]", "expires_after[seconds]")]
    try:
        if keep is None:
            raise ApiError(400, "Missing required parameter: 'file'.", param="file", code="missing_required_parameter")
        if unknown:
            raise ApiError(400, "Unrecognized request argument supplied: %s" % unknown[0], param=unknown[0],
                           code="unknown_parameter")
        if not purpose:
            raise ApiError(400, "Missing required parameter: 'purpose'.", param="purpose",
                           code="missing_required_parameter")
        if purpose not in FILE_PURPOSES:
            raise ApiError(400, "Invalid value: '%s'. Supported values are: %s."
                           % (purpose[:64], ", ".join("'%s'" % p for p in FILE_PURPOSES)),
                           param="purpose", code="invalid_value")
        expires_at = _expires_at(req, fields, seconds_range)
    except ApiError:
        _cleanup(opened)
        raise
    path = [p for p, fh in opened if fh is keep[1]][0]
    filename = os.path.basename((keep[0] or "file").replace("\\", "/")) or "file"
    req.send(200, req.state.add_file(path, filename, purpose, expires_at=expires_at, project=req.project))


def list_files(req):
    items = req.state.list_files(req.project)
    purpose = req.arg("purpose")
    if purpose:
        items = [f for f in items if f["purpose"] == purpose]
    order = req.arg("order", "desc")
    if order not in ("asc", "desc"):
        raise ApiError(400, "Invalid value: '%s'. Supported values are: 'asc' and 'desc'." % order[:32],
                       param="order", code="invalid_value")
    items.sort(key=lambda f: (f["created_at"], f["id"]), reverse=order == "desc")
    try:
        limit = int(req.arg("limit", "10000"))
    except ValueError:
        raise ApiError(400, "Invalid 'limit': expected an integer.", param="limit", code="invalid_type") from None
    if not 1 <= limit <= 10000:
        raise ApiError(400, "Invalid 'limit': expected a value between 1 and 10000.", param="limit",
                       code="invalid_value")
    after = req.arg("after")
    start = 0
    if after:
        idx = [i for i, f in enumerate(items) if f["id"] == after]
        start = idx[0] + 1 if idx else len(items)
    page = items[start: start + limit]
    req.send(200, {"object": "list", "data": page, "first_id": page[0]["id"] if page else None,
                   "last_id": page[-1]["id"] if page else None, "has_more": start + limit < len(items)})


def retrieve_file(req, fid):
    meta, _ = req.state.get_file(fid, req.project)
    if meta is None:
        raise _not_found(fid)
    req.send(200, meta)


def delete_file(req, fid):
    if not req.state.delete_file(fid, req.project):
        raise _not_found(fid)
    req.send(200, {"id": fid, "object": "file", "deleted": True})


def file_content(req, fid):
    meta, path = req.state.get_file(fid, req.project)
    if meta is None:
        raise _not_found(fid)
    req.send_file(path, meta["filename"], not_found=_not_found(fid))


ROUTES = [
    (r"^/v1/files$", "/v1/files", {"GET": list_files, "POST": upload_file}, "openai"),
    (r"^/v1/files/([^/]+)$", "/v1/files/{id}", {"GET": retrieve_file, "DELETE": delete_file}, "openai"),
    (r"^/v1/files/([^/]+)/content$", "/v1/files/{id}/content", {"GET": file_content}, "openai"),
]
