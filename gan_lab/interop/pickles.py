"""Read a stylegan2-ada-pytorch pickle as data: no code from the file runs, no foreign class is built.

stylegan2-ada-pytorch (Karras et al. 2020, "Training Generative Adversarial Networks with Limited
Data") saves its snapshots and published models with ``pickle.dump`` of a dict of network objects
whose classes are wrapped by its ``torch_utils.persistence``: each object is stored as a call
``_reconstruct_persistent_obj(meta)`` where ``meta`` holds the SOURCE CODE of the module that
defined the class, the class name and the object's ``__dict__`` (``_parameters``, ``_buffers``,
``_modules``, ``_init_args``, ``_init_kwargs``, ...). Its own loader ``exec``s that source, so
loading such a file with ``pickle.load`` runs whatever code the file carries; any pickle can also
call any importable function through ``__reduce__`` (``os.system``, ``builtins.exec``).

``load_pickle`` unpickles with ``RestrictedUnpickler``, whose ``find_class`` hands out only the
functions and types listed in ``ALLOWED`` and refuses every other global with one line:

* ``torch_utils.persistence._reconstruct_persistent_obj`` -> ``_persistent_record``, which returns
  a ``PersistentRecord`` (class name, the object's stored state; the source code is kept as a
  string and never executed);
* tensors: the rebuild functions of ``torch._utils`` (re-implemented here: plain tensors on the
  CPU, no hooks, no attribute state) and ``torch.storage._load_from_bytes``, whose original calls
  ``torch.load(weights_only=False)`` on the embedded bytes; here ``torch.load(weights_only=True)``;
* containers: ``collections.OrderedDict``, ``builtins.set``/``frozenset``, ``dnnlib.EasyDict``
  (read as a plain dict);
* numpy scalars and arrays of plain dtypes (``numpy.dtype``, ``scalar``, ``_reconstruct``,
  ``ndarray``), which the reference's layers keep as attributes (``np.sqrt`` gains);
* ``_codecs.encode(text, "latin1")`` (how protocol-2 pickles store bytes).

Persistent ids (``PERSID``) are refused by ``pickle.Unpickler`` itself (no ``persistent_load``).
"""

from __future__ import annotations

import _compat_pickle
import codecs
import collections
import io
import pickle
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from gan_lab.interop.common import ImportRefused, load_failure


class UnsafePickleError(ImportRefused):
    """The pickle asks for a function or class outside ``ALLOWED`` (it would run code)."""


@dataclass
class PersistentRecord:
    """One ``torch_utils.persistence`` object, as stored: ``class_name`` and ``state`` (its
    ``__dict__``); ``module_src`` is the stored source code, kept as text and never run."""

    class_name: str
    state: dict[str, Any]
    module_src: str = field(default="", repr=False)
    version: Any = None

    def __setstate__(self, state: Any) -> None:
        """Pickle's BUILD on a record (a crafted file rewriting what ``_persistent_record`` checked)."""
        raise UnsafePickleError("a pickle that rewrites a persistence record after building it")

    @property
    def init_args(self) -> tuple:
        args = self.state.get("_init_args", ())
        return tuple(args) if isinstance(args, list | tuple) else ()

    @property
    def init_kwargs(self) -> dict[str, Any]:
        kwargs = self.state.get("_init_kwargs", {})
        return plain(kwargs) if isinstance(kwargs, dict) else {}

    @property
    def children(self) -> dict[str, Any]:
        modules = self.state.get("_modules", {})
        return dict(modules) if isinstance(modules, dict) else {}


class _EasyDict(dict):
    """``dnnlib.EasyDict`` read as a dict (its attribute access is not needed)."""


def plain(value: Any) -> Any:
    """``value`` with every dict subclass (EasyDict, OrderedDict) turned into a dict, recursively."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(plain(v) for v in value) if isinstance(value, list) else tuple(map(plain, value))
    return value


def _persistent_record(meta: Any) -> PersistentRecord:
    """Stands in for ``torch_utils.persistence._reconstruct_persistent_obj``: a record, no ``exec``."""
    if not isinstance(meta, dict) or meta.get("type") != "class":
        raise UnsafePickleError("a persistent object of an unknown kind (expected type='class')")
    name, state = meta.get("class_name"), meta.get("state")
    if not isinstance(name, str) or not isinstance(state, dict):
        raise UnsafePickleError("a persistent object without a class name or a state dict")
    src = meta.get("module_src")
    return PersistentRecord(name, dict(state), src if isinstance(src, str) else "", meta.get("version"))


def _load_storage_bytes(data: Any) -> Any:
    """``torch.storage._load_from_bytes`` with ``weights_only=True`` (the original runs a full unpickle)."""
    if not isinstance(data, bytes | bytearray):
        raise UnsafePickleError("a tensor storage that is not bytes")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # TypedStorage is deprecated (what torch itself returns here)
            return torch.load(io.BytesIO(bytes(data)), map_location="cpu", weights_only=True)
    except Exception as e:
        reason = load_failure(e)
        raise UnsafePickleError(f"a tensor's embedded bytes are not plain tensor data ({reason})") from None


def _check_hooks(hooks: Any) -> None:
    if (
        hooks is not None and len(hooks) > 0
    ):  # hooks are functions: never carried over (and would need find_class anyway)
        raise UnsafePickleError("a tensor with backward hooks")


def _check_bounds(elements: int, offset: Any, size: Any, stride: Any) -> None:
    """A tensor view must lie inside its storage (``set_`` would grow the storage instead, and the
    weights would be uninitialised memory): ``offset + sum((size - 1) * stride) < elements``."""
    try:
        offset, size, stride = int(offset), [int(s) for s in size], [int(s) for s in stride]
    except (TypeError, ValueError):
        raise ImportRefused("a damaged tensor (its offset, sizes or strides are not integers)") from None
    if offset < 0 or len(size) != len(stride) or any(s < 0 for s in (*size, *stride)):
        raise ImportRefused("a damaged tensor (negative or mismatched sizes)")
    if 0 in size:
        return
    if offset + sum((n - 1) * s for n, s in zip(size, stride, strict=True)) >= elements:
        raise ImportRefused("a damaged tensor: larger than its storage")


def _rebuild_tensor(storage: Any, offset: int, size: Any, stride: Any, *rest: Any) -> Tensor:
    """``torch._utils._rebuild_tensor(_v2)``: a CPU tensor viewing ``storage`` (no hooks, no state)."""
    if len(rest) > 1:
        _check_hooks(rest[1])
    if isinstance(storage, torch.TypedStorage):
        dtype, untyped = storage.dtype, storage._untyped_storage
    elif isinstance(storage, torch.UntypedStorage):
        dtype, untyped = torch.uint8, storage
    else:
        raise UnsafePickleError(f"a tensor whose storage is a {type(storage).__name__}")
    _check_bounds(untyped.nbytes() // max(dtype.itemsize, 1), offset, size, stride)
    try:
        return torch.empty(0, dtype=dtype).set_(untyped, int(offset), tuple(size), tuple(stride))
    except (RuntimeError, TypeError, ValueError) as e:
        raise ImportRefused(f"a damaged tensor ({str(e).splitlines()[0]})") from None


def _rebuild_parameter(data: Any, requires_grad: Any = False, hooks: Any = None, *state: Any) -> Tensor:
    """``torch._utils._rebuild_parameter(_with_state)``: the tensor itself (the lab builds its own
    parameters; attribute state is dropped)."""
    if not isinstance(data, Tensor):
        raise UnsafePickleError("a parameter without tensor data")
    _check_hooks(hooks)
    return data


def _numpy_scalar(dtype: Any, data: Any = None) -> Any:
    if not isinstance(dtype, np.dtype) or dtype.hasobject or not isinstance(data, bytes):
        raise UnsafePickleError("a numpy scalar of an object dtype")
    return np.frombuffer(data, dtype=dtype, count=1)[0]


def _numpy_reconstruct(cls: Any, shape: Any, dtype_code: Any) -> np.ndarray:
    if cls is not np.ndarray:
        raise UnsafePickleError("a numpy array of another class")
    return np.ndarray.__new__(np.ndarray, shape, dtype_code)


def _latin1(text: Any, encoding: Any = "latin1") -> bytes:
    if not isinstance(text, str) or str(encoding).lower().replace("-", "") != "latin1":
        raise UnsafePickleError("_codecs.encode of anything but latin-1 text")
    return codecs.encode(text, "latin1")


def _numpy_entries() -> dict[tuple[str, str], Any]:
    entries: dict[tuple[str, str], Any] = {("numpy", "dtype"): np.dtype, ("numpy", "ndarray"): np.ndarray}
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        entries[(module, "scalar")] = _numpy_scalar
        entries[(module, "_reconstruct")] = _numpy_reconstruct
    return entries


ALLOWED: dict[tuple[str, str], Callable[..., Any] | type] = {
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): _persistent_record,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch.storage", "_load_from_bytes"): _load_storage_bytes,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("dnnlib.util", "EasyDict"): _EasyDict,
    ("dnnlib", "EasyDict"): _EasyDict,
    ("_codecs", "encode"): _latin1,
    **_numpy_entries(),
}


class RestrictedUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` whose globals are ``ALLOWED``'s stand-ins and nothing else."""

    def find_class(self, module: str, name: str) -> Any:
        # Python 2 names of protocol 0-2 pickles (__builtin__.set, copy_reg), as pickle's own find_class
        module, name = _compat_pickle.NAME_MAPPING.get((module, name), (module, name))
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        allowed = ALLOWED.get((module, name))
        if allowed is None and module.startswith("dnnlib.tflib"):
            raise UnsafePickleError(
                f"a TensorFlow StyleGAN2 pickle ({module}.{name}): convert it to a stylegan2-ada-pytorch "
                "pickle first (its legacy.py: python legacy.py --source=SRC --dest=OUT.pkl)"
            )
        if allowed is None:
            raise UnsafePickleError(
                f"refused {module}.{name}: the file would call it when loaded (only StyleGAN2 networks, "
                "tensors and plain values are read)"
            )
        return allowed


def load_pickle(path: str | Path, what: str) -> Any:
    """The unpickled contents of ``path`` (``what`` names it in errors: ``SRC=...``)."""
    try:
        with open(path, "rb") as f:
            return RestrictedUnpickler(f).load()
    except UnsafePickleError as e:
        raise UnsafePickleError(f"{what}: {e}") from None
    except ImportRefused as e:
        raise ImportRefused(f"{what}: {e}") from None
    except (
        pickle.UnpicklingError,
        EOFError,
        AttributeError,
        ValueError,
        TypeError,
        IndexError,
        KeyError,
        RuntimeError,
        MemoryError,
        RecursionError,
        OverflowError,
    ) as e:
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ImportRefused(f"{what} is not a readable pickle ({reason})") from None
