"""fprt.export — ONNX export with parity checks, INT8 quantisation, TensorRT engine builds."""
