"""The segmentation model: the Keras architecture, MediaPipe weight import, export to ONNX/TFLite/TensorRT,
the model contract every runtime reads (``contract``), the ``Segmenter`` interface and its runtimes, training
and evaluation on labelled data. Nothing here depends on ``backdrop.stream``."""
