"""`backdrop model …`: regenerate the shipped weights, export to other formats, list runtimes."""

from __future__ import annotations

import argparse
from pathlib import Path

from backdrop.errors import ModelError
from backdrop.model.contract import WEIGHTS_DIR, resolve_model

EXPORT_SUFFIXES = {"onnx": ".onnx", "tflite": ".tflite", "tflite-fp16": ".fp16.tflite", "tensorrt": ".engine"}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("model", help="import, export and inspect segmentation models")
    commands = parser.add_subparsers(dest="model_command", required=True)

    importer = commands.add_parser("import", help="convert MediaPipe's pretrained TFLite weights to Keras")
    importer.add_argument("--wheel", type=Path, required=True, help="mediapipe==0.10.14 wheel or a .tflite file")
    importer.add_argument("--variant", choices=("general", "landscape", "both"), default="both")
    importer.add_argument("--out", type=Path, default=WEIGHTS_DIR, help="folder for the model files")
    importer.set_defaults(handler=run_import)

    exporter = commands.add_parser("export", help="export a Keras model to ONNX, TFLite or a TensorRT engine")
    exporter.add_argument("--model", default="general", help="general, landscape or a path to a .keras model")
    exporter.add_argument("--format", choices=tuple(EXPORT_SUFFIXES), required=True)
    exporter.add_argument("--out", type=Path, help="output file (default: beside the model)")
    exporter.add_argument("--max-batch", type=int, default=8, help="TensorRT optimisation profile's largest batch")
    exporter.add_argument("--fp32", action="store_true", help="TensorRT: build in float32 instead of FP16")
    exporter.set_defaults(handler=run_export)

    runtimes = commands.add_parser("runtimes", help="list inference runtimes and whether each can run here")
    runtimes.set_defaults(handler=run_runtimes)


def run_import(args: argparse.Namespace) -> int:
    from backdrop.model.weight_import import import_mediapipe

    variants = ("general", "landscape") if args.variant == "both" else (args.variant,)
    for path in import_mediapipe(args.wheel, args.out, variants):
        print(path)
    return 0


def run_export(args: argparse.Namespace) -> int:
    files = resolve_model(args.model)
    contract = files.contract
    out = args.out or Path(f"{files.stem}{EXPORT_SUFFIXES[args.format]}")
    if not out.parent.is_dir():
        raise ModelError(f"output folder does not exist: {out.parent}")
    if args.format == "tensorrt":
        from backdrop.model.tensorrt_engine import EngineSpec, build_serialized_engine

        onnx_path = files.require(".onnx")
        spec = EngineSpec(onnx_path, contract.input_name, contract.input_size, args.max_batch, not args.fp32)
        out.write_bytes(build_serialized_engine(spec))
    else:
        from backdrop.model.export import export_onnx, export_tflite
        from backdrop.model.keras_io import load_keras_model

        model = load_keras_model(files.require(".keras"))
        if args.format == "onnx":
            export_onnx(model, contract, out)
        else:
            export_tflite(model, contract, out, fp16=args.format == "tflite-fp16")
    print(out)
    return 0


def run_runtimes(args: argparse.Namespace) -> int:
    from backdrop.model.segmenter import available_runtimes

    for name, reason in available_runtimes().items():
        print(f"{name:12} {'available' if not reason else 'unavailable: ' + reason}")
    return 0
