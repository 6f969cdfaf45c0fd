"""Reading a PyTorch state dict into numpy arrays, safely.

``.pt``/``.pth`` files go through ``torch.load(weights_only=True)``, which unpickles tensors and plain containers
only and refuses any pickled code or object (a checkpoint is data, never a program); they need torch (the optional
extra ``edgeprune[torch]``). ``.safetensors`` files go through the ``safetensors`` package's numpy API: no torch,
no pickle.

Common wrappings are undone: a dict holding the state dict under one of :data:`WRAPPER_KEYS` (``state_dict``,
``model``, ``params``, ``params_ema``, as training frameworks save them), and the ``module.`` prefix that
``nn.DataParallel`` adds to every key.
"""

from pathlib import Path

import numpy as np

from edgeprune.core.errors import CheckpointError, MissingDependencyError
from edgeprune.core.text import one_line

TORCH_SUFFIXES = (".pt", ".pth")
SAFETENSORS_SUFFIX = ".safetensors"
WRAPPER_KEYS = ("state_dict", "model", "params_ema", "params")
INSTALL_TORCH = ("install PyTorch, edgeprune's optional extra: pip install 'edgeprune[torch]' (a CPU build is "
                 "enough: pip install torch --index-url https://download.pytorch.org/whl/cpu), or convert the "
                 "checkpoint to .safetensors, which needs no torch")


def torch_or_explain(why: str):
    """The ``torch`` module, or a :class:`MissingDependencyError` that says how to install it."""
    try:
        import torch
    except ImportError:
        raise MissingDependencyError(f"{why} needs PyTorch, which is not installed: {INSTALL_TORCH}") from None
    return torch


def check_source(path) -> Path:
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint '{path}' does not exist")
    if path.is_dir():
        raise CheckpointError(f"'{path}' is a directory: give the checkpoint file (.pt, .pth or .safetensors)")
    suffix = path.suffix.lower()
    if suffix not in TORCH_SUFFIXES + (SAFETENSORS_SUFFIX,):
        raise CheckpointError(f"'{path}' is not a PyTorch checkpoint: expected a .pt, .pth or .safetensors file")
    return path


def _one_line(exc: BaseException) -> str:
    text = one_line(str(exc))
    return (text[:240] + "...") if len(text) > 240 else (text or type(exc).__name__)


def _load_torch(path: Path) -> dict:
    torch = torch_or_explain(f"reading '{path.name}'")
    import pickle

    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        text = one_line(str(exc))
        detail = text[text.find("WeightsUnpickler error:"):].split(". ")[0] if "WeightsUnpickler" in text else ""
        if "Unsupported global" in detail:
            raise CheckpointError(
                f"'{path}' holds pickled code or objects, which weights-only loading refuses for safety "
                f"({detail.removeprefix('WeightsUnpickler error: ')}); save the plain state dict "
                f"(torch.save(model.state_dict(), F)) or convert it to .safetensors") from None
        raise CheckpointError(f"'{path}' is not a readable PyTorch checkpoint: weights-only loading refuses it "
                              f"({detail.removeprefix('WeightsUnpickler error: ') or _one_line(exc)}); is it "
                              f"truncated, or not a torch.save file?") from None
    except (RuntimeError, EOFError, OSError, ValueError, KeyError) as exc:  # torch, for truncated or foreign files
        raise CheckpointError(f"'{path}' is not a readable PyTorch checkpoint (truncated or not a torch.save "
                              f"file: {_one_line(exc)})") from None
    return data


def _load_safetensors(path: Path) -> dict:
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:  # SafetensorError for a bad header or a short file
        raise CheckpointError(f"'{path}' is not a readable .safetensors file (truncated or corrupt: "
                              f"{_one_line(exc)})") from None


def _unwrap(data, path: Path) -> dict:
    for _ in range(2):  # {"state_dict": {...}} or {"model": {"state_dict": ...}} at most
        if isinstance(data, dict) and not any(_is_tensor(v) for v in data.values()):
            inner = next((data[k] for k in WRAPPER_KEYS if isinstance(data.get(k), dict)), None)
            if inner is None:
                break
            data = inner
    if not isinstance(data, dict) or not data:
        raise CheckpointError(f"'{path}' does not hold a state dict (a mapping of names to tensors), but "
                              f"{type(data).__name__}{' (empty)' if isinstance(data, dict) else ''}")
    return data


def _is_tensor(value) -> bool:
    return isinstance(value, np.ndarray) or type(value).__name__ in ("Tensor", "Parameter")


def _to_numpy(name: str, value, path: Path) -> np.ndarray:
    if isinstance(value, np.ndarray):
        array = value
    elif type(value).__name__ in ("Tensor", "Parameter"):
        array = value.detach().cpu().float().numpy() if value.is_floating_point() else value.cpu().numpy()
    else:
        raise CheckpointError(f"'{path}': entry '{name}' is a {type(value).__name__}, not a tensor: it is not a "
                              f"state dict")
    return np.asarray(array, dtype=np.float32) if np.issubdtype(array.dtype, np.floating) else array


def load_state_dict(path) -> dict[str, np.ndarray]:
    """The tensors of a ``.pt``/``.pth``/``.safetensors`` state dict as float32 numpy arrays (OIHW as saved), keyed
    by name with wrappers and a ``module.`` prefix removed; raises :class:`CheckpointError` (one line) for anything
    that is not a readable state dict, and :class:`MissingDependencyError` for a ``.pt`` without torch."""
    path = check_source(path)
    data = _load_safetensors(path) if path.suffix.lower() == SAFETENSORS_SUFFIX else _load_torch(path)
    data = _unwrap(data, path)
    tensors = {str(k): _to_numpy(str(k), v, path) for k, v in data.items()}
    if tensors and all(k.startswith("module.") for k in tensors):
        tensors = {k[len("module."):]: v for k, v in tensors.items()}
    return tensors
