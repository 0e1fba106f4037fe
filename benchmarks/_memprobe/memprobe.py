"""Where a running app server's memory is: answered on request from inside the process (see sitecustomize.py).

Owners are walked in a fixed order with one shared "seen" set, so data two owners share is counted once, for
the first: Streamlit's ``st.cache_resource`` entries, ``st.cache_data`` entries (their pickled bytes), the
app's own LRU caches (``ui.layer_cache`` figures, ``vizlib.serving`` pictures, ``vizlib.figures.common``
photo URIs, feature-visualization pictures), media files (``st.image`` bytes), uploaded files, then each
session's ``st.session_state``. Separately: every numpy array and torch tensor alive (reachable from an
object the garbage collector tracks, frozen start-up objects left out), glibc's ``mallinfo2`` and /proc.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import gc
import json
import sys
import time
import types
from pathlib import Path

_LIBC = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]


def _mallinfo() -> dict[str, float]:
    _LIBC.mallinfo2.restype = _MallInfo2
    info = _LIBC.mallinfo2()
    mb = 2**20
    return {"heap_mb": info.arena / mb, "mmapped_mb": info.hblkhd / mb, "in_use_mb": (info.uordblks + info.hblkhd) / mb,
            "free_kept_mb": info.fordblks / mb, "mmapped_chunks": info.hblks}


def _proc() -> dict[str, float]:
    out = {}
    for line in Path("/proc/self/smaps_rollup").read_text().splitlines()[1:]:
        key, _, value = line.partition(":")
        if key in ("Rss", "Anonymous", "Shared_Clean", "Private_Clean", "Private_Dirty"):
            out[key + "_mb"] = int(value.split()[0]) / 1024
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmHWM", "Threads"):
            out[key] = int(value.split()[0]) / (1024 if key == "VmHWM" else 1)
    return out


_STOP = (types.ModuleType, type, types.FunctionType, types.BuiltinFunctionType, types.MethodType, types.FrameType,
         types.CodeType)


class _Sizer:
    """Deep sizes with one "seen" set: numpy data by its owning buffer, torch data by its storage."""

    def __init__(self) -> None:
        import numpy as np
        import torch

        self.np, self.torch = np, torch
        self.seen: set[int] = set()
        self.storages: set[int] = set()

    def size(self, root: object) -> int:
        total, stack = 0, [root]
        np, torch = self.np, self.torch
        while stack:
            obj = stack.pop()
            if id(obj) in self.seen or issubclass(type(obj), _STOP):
                continue
            if isinstance(obj, torch.nn.Module):  # models: counted apart (shared, loaded once)
                continue
            self.seen.add(id(obj))
            if isinstance(obj, torch.Tensor):
                try:
                    storage = obj.untyped_storage()
                    if storage.data_ptr() not in self.storages:
                        self.storages.add(storage.data_ptr())
                        total += storage.nbytes()
                except RuntimeError:
                    pass
                continue
            if isinstance(obj, np.ndarray):
                total += sys.getsizeof(obj)  # data included when the array owns it
                if obj.base is not None:
                    stack.append(obj.base)
                continue
            with contextlib.suppress(TypeError):
                total += sys.getsizeof(obj)
            if isinstance(obj, (bytes, str, bytearray, int, float)):
                continue
            if isinstance(obj, memoryview):
                stack.append(obj.obj)
                continue
            stack.extend(gc.get_referents(obj))
        return total


def _resource_caches(sizer: _Sizer) -> dict[str, dict]:
    from streamlit.runtime.caching import cache_resource_api as api

    out = {}
    with api._resource_caches._caches_lock:
        caches = [c for per in api._resource_caches._function_caches.values() for c in per.values()]
    for cache in caches:
        with cache._mem_cache_lock:
            values = [r.value for r in cache._mem_cache.values()]
        out[cache.display_name] = {"entries": len(values), "mb": sum(sizer.size(v) for v in values) / 2**20}
    return out


def _data_caches() -> dict[str, dict]:
    from streamlit.runtime.caching import cache_data_api as api

    out: dict[str, dict] = {}
    with api._data_caches._caches_lock:
        caches = [c for per in api._data_caches._function_caches.values() for c in per.values()]
    for cache in caches:
        storage = getattr(cache.storage, "_mem_cache", None)
        lock = getattr(cache.storage, "_mem_cache_lock", None)
        if storage is None or lock is None:
            continue
        with lock:
            sizes = [len(v) for v in storage.values()]
        row = out.setdefault(cache.storage.function_display_name, {"entries": 0, "mb": 0.0})
        row["entries"] += len(sizes)
        row["mb"] += sum(sizes) / 2**20
    return out


def _lru_caches(sizer: _Sizer) -> dict[str, dict]:
    out = {}
    for module, name in (("ui.layer_cache", "_FIGURES"), ("vizlib.serving.pictures", "_CACHE"),
                         ("vizlib.figures.common", "_URIS"), ("vizlib.featurevis.service", "CACHE")):
        cache = getattr(sys.modules.get(module), name, None)
        if cache is None:
            continue
        with cache._lock:
            values = list(cache._data.values())
        out[f"{module}.{name}"] = {"entries": len(values), "mb": sum(sizer.size(v) for v in values) / 2**20}
    return out


def _runtime(sizer: _Sizer) -> dict[str, object]:
    from streamlit import runtime

    if not runtime.exists():
        return {}
    rt = runtime.get_instance()
    storage = rt.media_file_mgr._storage
    media = list(getattr(storage, "_files_by_id", {}).values())
    uploads = rt._uploaded_file_mgr
    with uploads._lock:
        upload_recs = [rec for per in uploads.file_storage.values() for rec in per.values()]
    infos = rt._session_mgr.list_sessions()
    active = {i.session.id for i in rt._session_mgr.list_active_sessions()}
    sessions = []
    for info in infos:
        state = info.session.session_state
        sessions.append({"active": info.session.id in active, "mb": sizer.size(state) / 2**20})
    return {
        "media_files": {"entries": len(media), "mb": sum(sizer.size(m) for m in media) / 2**20},
        "uploaded_files": {"entries": len(upload_recs), "mb": sum(sizer.size(r) for r in upload_recs) / 2**20},
        "sessions": {"count": len(sessions), "active": sum(s["active"] for s in sessions),
                     "state_mb": sum(s["mb"] for s in sessions),
                     "largest_state_mb": max((s["mb"] for s in sessions), default=0.0)},
    }


def _all_arrays() -> dict[str, float]:
    """Every numpy array's owned data and every torch storage reachable from a gc-tracked object."""
    import numpy as np
    import torch

    seen_arrays: set[int] = set()
    storages: dict[int, int] = {}
    array_bytes = 0
    sizes: list[int] = []
    for obj in gc.get_objects():
        candidates = [obj] if issubclass(type(obj), torch.Tensor) else []
        candidates += [r for r in gc.get_referents(obj) if issubclass(type(r), (np.ndarray, torch.Tensor))]
        for item in candidates:
            if isinstance(item, torch.Tensor):
                try:
                    storage = item.untyped_storage()
                    storages[storage.data_ptr()] = storage.nbytes()
                except RuntimeError:
                    pass
                continue
            while isinstance(item, np.ndarray) and item.base is not None:
                item = item.base
            if isinstance(item, torch.Tensor):
                storages[item.untyped_storage().data_ptr()] = item.untyped_storage().nbytes()
            elif isinstance(item, np.ndarray) and id(item) not in seen_arrays:
                seen_arrays.add(id(item))
                array_bytes += item.nbytes
                sizes.append(item.nbytes)
    return {"numpy_owned_mb": array_bytes / 2**20, "numpy_arrays": len(seen_arrays),
            "torch_storages_mb": sum(storages.values()) / 2**20, "torch_storages": len(storages)}


def _describe(obj: object) -> str:
    name = type(obj).__qualname__
    if isinstance(obj, dict):
        keys = [k for k in list(obj)[:4]]
        return f"dict{keys}"
    if isinstance(obj, types.FrameType):
        return f"frame {obj.f_code.co_name} ({obj.f_code.co_filename.rsplit('/', 2)[-1]}:{obj.f_lineno})"
    if isinstance(obj, types.CellType):
        return "cell"
    return name


def _unattributed(sizer: _Sizer, samples: int = 3, depth: int = 14) -> list[dict]:
    """Torch storages of 1 MB or more that no owner above reached, with who refers to them (chains of types)."""
    import numpy as np
    import torch

    big: dict[int, torch.Tensor] = {}
    views: dict[int, np.ndarray] = {}
    for obj in gc.get_objects():
        if issubclass(type(obj), torch.Tensor):
            try:
                storage = obj.untyped_storage()
            except RuntimeError:
                continue
            if storage.nbytes() >= 2**20 and storage.data_ptr() not in sizer.storages:
                big.setdefault(storage.data_ptr(), obj)
        stack = [(ref, obj) for ref in gc.get_referents(obj)]
        while stack:  # through untracked containers (a tuple of arrays is untracked) to arrays' bases
            ref, holder = stack.pop()
            if issubclass(type(ref), np.ndarray):
                base = ref.base
                while issubclass(type(base), np.ndarray):
                    base = base.base
                if issubclass(type(base), torch.Tensor):
                    views[id(base)] = holder
            elif type(ref) in (tuple, dict, list) and not gc.is_tracked(ref):
                stack.extend((r, holder) for r in gc.get_referents(ref))
    total = sum(t.untyped_storage().nbytes() for t in big.values())
    shapes: dict[str, int] = {}
    for t in big.values():
        shapes[str(tuple(t.shape))] = shapes.get(str(tuple(t.shape)), 0) + 1
    out: list[dict] = [{"count": len(big), "mb": total / 2**20,
                        "shapes": dict(sorted(shapes.items(), key=lambda kv: -kv[1])[:8])}]
    picks = list(big.values())[:samples]
    mine = {id(big), id(views), id(out), id(picks), id(shapes)}
    for i in range(len(picks)):
        cur = views.get(id(picks[i]), picks[i])
        chain = [f"{tuple(picks[i].shape)} held (through arrays/untracked tuples) by", _describe(cur)]
        for _ in range(depth):
            refs = [r for r in gc.get_referrers(cur) if id(r) not in mine]
            refs = [r for r in refs if not (isinstance(r, types.FrameType) and r.f_code.co_filename == __file__)]
            if not refs:
                chain.append("(no gc referrer)")
                break
            mine.add(id(refs))
            cur = refs[0]
            chain.append(_describe(cur) + (f" +{[_describe(r) for r in refs[1:4]]}" if len(refs) > 1 else ""))
        t = picks[i]
        out.append({"mb": t.untyped_storage().nbytes() / 2**20, "chain": chain, "refcount": sys.getrefcount(t) - 1,
                    "requires_grad": t.requires_grad, "grad_fn": type(t.grad_fn).__name__ if t.grad_fn else None,
                    "is_view": t._base is not None, "dtype": str(t.dtype)})
    with_graph = [o for o in gc.get_objects() if issubclass(type(o), torch.Tensor) and o.grad_fn is not None]
    out.append({"tensors_with_grad_fn": len(with_graph), "examples": [
        {"shape": tuple(o.shape), "grad_fn": type(o.grad_fn).__name__,
         "referrers": [_describe(r) for r in gc.get_referrers(o) if id(r) not in mine and r is not with_graph][:4]}
        for o in with_graph[:6]]})
    return out


def snapshot(deep: bool = True, why: bool = False) -> dict[str, object]:
    """Everything above, in MB."""
    start = time.process_time()
    out: dict[str, object] = {"time": time.time(), "proc": _proc(), "malloc": _mallinfo()}
    if deep:
        sizer = _Sizer()
        out["cache_resource"] = _resource_caches(sizer)
        out["cache_data"] = _data_caches()
        out["lru"] = _lru_caches(sizer)
        out.update(_runtime(sizer))
        out["alive"] = _all_arrays()
        if why:  # start-up objects are frozen (app: ui.shared.freeze_startup_objects): search them too
            frozen = gc.get_freeze_count()
            gc.unfreeze()
            try:
                out["unattributed"] = _unattributed(sizer)
            finally:
                if frozen:
                    gc.freeze()
    process = sys.modules.get("vizlib.serving.process")
    keeper = getattr(process, "housekeeper", lambda: None)()
    if keeper is not None:
        stats = keeper.stats()
        out["housekeeping"] = {"rounds": stats.rounds, "collections": stats.collections, "trims": stats.trims,
                               "unreachable": stats.unreachable, "cpu_s": stats.cpu_s, "wall_s": stats.wall_s,
                               "longest_cpu_s": stats.longest_cpu_s}
    out["probe_cpu_s"] = time.process_time() - start
    return out


def serve(folder: str) -> None:
    """Answer ``req-<name>`` (and ``trim-<name>``: malloc_trim first) files in ``folder`` with ``<name>.json``."""
    where = Path(folder)
    where.mkdir(parents=True, exist_ok=True)
    while True:
        for req in sorted(where.glob("req-*")) + sorted(where.glob("trim-*")):
            name = req.name.split("-", 1)[1]
            try:
                collected = None
                if name.startswith("gc"):  # a full garbage collection first, timed
                    before = (len(gc.get_objects()), gc.get_count())
                    start = time.process_time()
                    found = gc.collect()
                    collected = {"cpu_s": time.process_time() - start, "unreachable": found,
                                 "tracked_before": before[0], "counts_before": before[1]}
                answer = snapshot(deep=not name.startswith("light"), why=name.startswith("why"))
                answer["gc"] = collected
                if req.name.startswith("trim-"):
                    start = time.process_time()
                    _LIBC.malloc_trim(0)
                    answer["trim_cpu_s"] = time.process_time() - start
                    answer["after_trim"] = {"proc": _proc(), "malloc": _mallinfo()}
            except Exception as exc:  # noqa: BLE001 - a probe must not take the server down
                answer = {"error": f"{type(exc).__name__}: {exc}"}
            partial = where / f".{name}.part"
            partial.write_text(json.dumps(answer, indent=1))
            partial.rename(where / f"{name}.json")  # whole or not at all for the reader
            req.unlink()
        time.sleep(0.5)
