"""One module per inference runtime (ONNX Runtime, TFLite, Keras, TensorRT), each a ``Segmenter``
(model/segmenter.py) that imports its heavy library only when loaded."""
