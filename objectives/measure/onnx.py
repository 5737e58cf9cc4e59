"""Students as ONNX and INT8 ONNX models, run by ONNX Runtime (the optional ``onnx`` extra).

:func:`export_onnx` writes a float student to ``<dir>/model.onnx`` with its tokenizer and config
beside it (PyTorch's TorchScript ONNX exporter, opset 17); :func:`quantize_int8` applies ONNX
Runtime's dynamic INT8 quantisation; :class:`OnnxClassifier` and :func:`load_student` load an
ONNX student directory like a float one (``.logits``, a torch tensor). The directory is served
by ``onnxruntime.InferenceSession(DIR/model.onnx)`` plus ``AutoTokenizer(DIR)`` without kdtune.
Why: docs/design.md, "ONNX export without Optimum", "INT8 quantisation by ONNX Runtime".
"""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from kdtune.errors import UsageError

from ..compute.predict import MODEL_INPUTS

ONNX_FILE = "model.onnx"
FORMATS = ("onnx", "int8")
"""The compressed formats kdtune writes, besides the float ``save_pretrained`` student."""
OPSET = 17


def _require_onnx() -> Any:
    try:
        import onnxruntime
    except ImportError as e:
        raise UsageError("ONNX formats need the onnx extra: pip install 'kdtune[onnx]' "
                         "(onnx and onnxruntime)") from e
    return onnxruntime


def is_onnx_dir(path: str | Path) -> bool:
    """Whether ``path`` is a directory holding an ONNX student (``model.onnx``)."""
    return (Path(str(path)).expanduser() / ONNX_FILE).is_file()


def parse_formats(text: str | None) -> tuple[str, ...]:
    """``"onnx,int8"`` -> ``("onnx", "int8")``; a UsageError names an unknown format."""
    if not text:
        return ()
    names = tuple(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))
    bad = [n for n in names if n not in FORMATS]
    if bad:
        raise UsageError(f"--formats: {', '.join(bad)} not one of {', '.join(FORMATS)}")
    return names


def export_onnx(model: Any, tokenizer: Any, out_dir: Path) -> Path:
    """Write ``model`` (a transformers sequence classifier) as ONNX into ``out_dir`` (which
    must exist), with its config and tokenizer; returns the ONNX file."""
    import warnings

    import torch

    _require_onnx()
    names = [n for n in MODEL_INPUTS if n in tokenizer.model_input_names]
    sample = tokenizer(["a short example", "another"], padding=True, return_tensors="pt")
    args = tuple(sample[n] for n in names)
    axes = {n: {0: "batch", 1: "sequence"} for n in names} | {"logits": {0: "batch"}}
    model = model.to("cpu").eval()
    out = Path(out_dir) / ONNX_FILE
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notices
        torch.onnx.export(model, args, str(out), input_names=names, output_names=["logits"],
                          dynamic_axes=axes, opset_version=OPSET, dynamo=False)
    model.config.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out


def quantize_int8(onnx_dir: Path, out_dir: Path) -> Path:
    """ONNX Runtime's dynamic INT8 quantisation of ``onnx_dir``'s model into ``out_dir``
    (which must exist), config and tokenizer copied; returns the quantised file."""
    _require_onnx()
    import logging

    from onnxruntime.quantization import QuantType, quantize_dynamic

    onnx_dir, out_dir = Path(onnx_dir), Path(out_dir)
    quiet = logging.getLogger()
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # its advice to pre-process goes to the root logger
    try:
        quantize_dynamic(onnx_dir / ONNX_FILE, out_dir / ONNX_FILE, weight_type=QuantType.QInt8)
    finally:
        quiet.setLevel(level)
    for item in onnx_dir.iterdir():
        if item.name != ONNX_FILE and item.is_file():
            shutil.copy2(item, out_dir / item.name)
    return out_dir / ONNX_FILE


class OnnxClassifier:
    """An ONNX student run by ONNX Runtime, called like a transformers classifier."""

    def __init__(self, path: str | Path, threads: int | None = None) -> None:
        ort = _require_onnx()
        from transformers import AutoConfig

        path = Path(str(path)).expanduser()
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(path / ONNX_FILE), options,
                                            providers=["CPUExecutionProvider"])
        self.inputs = [i.name for i in self.session.get_inputs()]
        self.config = AutoConfig.from_pretrained(path)
        self.path = path

    def __call__(self, **inputs: Any) -> SimpleNamespace:
        import torch

        feed = {n: np.asarray(inputs[n].cpu().numpy(), dtype=np.int64) for n in self.inputs}
        logits = self.session.run(["logits"], feed)[0]
        return SimpleNamespace(logits=torch.from_numpy(np.asarray(logits, dtype=np.float32)))

    def eval(self) -> OnnxClassifier:
        return self

    def to(self, device: Any) -> OnnxClassifier:
        if str(device) not in ("cpu", "auto"):
            raise UsageError(f"an ONNX student runs on the CPU here, not {device}")
        return self


def int8_probabilities(model: Any, tokenizer: Any, dataset: Any, collate: Any) -> np.ndarray:
    """A trained student's probabilities on ``dataset`` (tokenised, padded by ``collate``) after
    INT8 quantisation (``eval.int8``): exported and quantised in a temporary directory, run by
    ONNX Runtime at torch's current thread count."""
    import tempfile

    import torch

    from ..compute.predict import predict_logits
    from .metrics import softmax

    device = next(model.parameters()).device
    with tempfile.TemporaryDirectory(prefix="kdtune-int8-") as tmp:
        float_dir, int8_dir = Path(tmp) / "onnx", Path(tmp) / "int8"
        float_dir.mkdir()
        int8_dir.mkdir()
        try:
            export_onnx(model, tokenizer, float_dir)
        finally:
            model.to(device)
        quantize_int8(float_dir, int8_dir)
        quantised = OnnxClassifier(int8_dir, threads=torch.get_num_threads())
        logits = predict_logits(quantised, dataset, collate)
    return softmax(logits)


def load_student(path: str | Path, threads: int | None = None) -> tuple[Any, Any]:
    """``(model, tokenizer)`` of a student directory: ONNX (``model.onnx``) through
    :class:`OnnxClassifier`, anything else as a transformers checkpoint."""
    if is_onnx_dir(path):
        from transformers import AutoTokenizer

        return OnnxClassifier(path, threads), AutoTokenizer.from_pretrained(
            Path(str(path)).expanduser())
    from ..teacher.load import load_teacher

    return load_teacher(path, role="student")
