"""How well a student matches its teacher: metric definitions and catalogue, bootstrap
intervals, the evaluation protocol, ONNX students and ``kdtune audit``.

Public names are imported on first use (:mod:`kdtune.lazy`).
"""

from kdtune.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "AuditConfig": ".audit",
    "audit_models": ".audit",
    "print_audit": ".audit",
    "read_predictions": ".predictions",
    "verdict": ".audit",
    "DEFAULT_RESAMPLES": ".bootstrap",
    "Interval": ".bootstrap",
    "interval_key": ".bootstrap",
    "paired_bootstrap": ".bootstrap",
    "resample_counts": ".bootstrap",
    "resample_statistics": ".bootstrap",
    "weighted_sigma": ".bootstrap",
    "METRICS": ".catalogue",
    "Metric": ".catalogue",
    "OBJECTIVES": ".catalogue",
    "direction": ".catalogue",
    "meaning": ".catalogue",
    "check_labels": ".metrics",
    "check_reference_class": ".metrics",
    "confidence_metrics": ".metrics",
    "softmax": ".metrics",
    "FORMATS": ".onnx",
    "ONNX_FILE": ".onnx",
    "OnnxClassifier": ".onnx",
    "export_onnx": ".onnx",
    "load_student": ".onnx",
    "parse_formats": ".onnx",
    "quantize_int8": ".onnx",
    "PROTOCOL_VERSION": ".protocol",
    "describe_protocol": ".protocol",
    "protocol_problems": ".protocol",
    "teacher_train_split": ".protocol",
})
