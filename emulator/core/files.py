"""Files of every project: uploaded ones, batch outputs, and the lazily generated files of bulk rows."""

import os

from .. import bulk, ids
from .model import THIRTY_DAYS


class FilesMixin:
    """File store of ``EmulatorState`` (``self.files``: id -> {"meta", "path", "project"})."""

    def new_file_path(self):
        with self.lock:
            self._n += 1
            return os.path.join(self.dir, "f%06d.bin" % self._n)

    def add_file(self, path, filename, purpose, created_at=None, expires_at="default", rng=None, project=None):
        size = os.path.getsize(path)
        with self.lock:
            project = self.project(project)
            created = int(created_at if created_at is not None else self.now())
            if expires_at == "default":
                expires_at = created + THIRTY_DAYS if purpose in ("batch", "batch_output") else None
            fid = ids.file_id(rng)
            return self._register_file(fid, path, size, filename, purpose, created, expires_at, project)

    def _register_file(self, fid, path, size, filename, purpose, created, expires_at, project):
        meta = {
            "id": fid,
            "object": "file",
            "bytes": size,
            "created_at": created,
            "filename": filename,
            "purpose": purpose,
            "status": "processed",
            "expires_at": expires_at,
            "status_details": None,
        }
        self.files[fid] = {"meta": meta, "path": path, "project": project}
        return dict(meta)

    def _bulk_file(self, fid, project):
        """The bulk row a lazily generated file id belongs to, as (row, kind), or None."""
        if fid in self._lazy_deleted:
            return None
        for bid, kind in bulk.parse_file_id(fid):
            row = self.batches.get(bid)
            if row is not None and row.is_row and row.project == project and row.has_file(kind):
                return row, kind
        return None

    def get_file(self, fid, project=None):
        """(meta, path) of a file of this project, or (None, None). Bulk files are generated here."""
        with self.lock:
            project = self.project(project)
            f = self.files.get(fid)
            if f is not None:
                return (dict(f["meta"]), f["path"]) if f["project"] == project else (None, None)
            hit = self._bulk_file(fid, project)
            if hit is None:
                return None, None
            shift = self.shift
        path = self.new_file_path()  # generate outside the lock: a big file takes a moment
        filename, purpose, created, expires = bulk.write_file(hit[0], hit[1], path, shift)
        with self.lock:
            f = self.files.get(fid)
            if f is None:
                self._register_file(fid, path, os.path.getsize(path), filename, purpose, created, expires, project)
                f = self.files[fid]
                path = None
        if path is not None:  # another request generated it first
            os.unlink(path)
        return dict(f["meta"]), f["path"]

    def delete_file(self, fid, project=None):
        with self.lock:
            project = self.project(project)
            f = self.files.get(fid)
            if f is None or f["project"] != project:
                if f is None and self._bulk_file(fid, project) is not None:
                    self._lazy_deleted.add(fid)
                    return True
                return False
            del self.files[fid]
            keep = f["path"] in self._seed_paths  # seeded files survive on disk for reset()
        if not keep:
            try:
                os.unlink(f["path"])
            except OSError:
                pass
        return True

    def list_files(self, project=None):
        with self.lock:
            project = self.project(project)
            return [dict(f["meta"]) for f in self.files.values() if f["project"] == project]
