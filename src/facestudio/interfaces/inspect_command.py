"""`facestudio inspect`: what an image says about where it came from."""

from __future__ import annotations

import argparse
import json
import sys

from facestudio.structured_files import printable

EXIT_ALTERED = 1


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "inspect",
        help="show an image's generated label, settings, content credentials and watermark",
        description=(
            "Read an image's FaceStudio settings (PNG text or EXIF), validate its C2PA content "
            "credentials (an image whose pixels changed after signing is reported as altered) "
            "and look for FaceStudio's invisible watermark. Exit status 0 when the image was "
            "read, 1 when it has content credentials that do not validate (altered after "
            "signing), 2 for a file that cannot be read."
        ),
    )
    parser.add_argument("image", metavar="IMAGE", help="image file (PNG, JPEG, WebP)")
    parser.add_argument("--json", action="store_true", help="print the full report as JSON")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from facestudio.provenance.inspect import inspect_image

    report = inspect_image(args.image)
    if args.json:
        json.dump(report.to_dict(), sys.stdout, indent=2, sort_keys=True, default=str)
        print()
    else:
        for line in describe(report):
            print(line)
    return EXIT_ALTERED if report.credentials.present and not report.credentials.intact else 0


def describe(report) -> list[str]:
    """The report as short lines a person reads. Every value from the file is shown bounded
    and printable, and a value of the wrong type is shown as '?', never trusted."""
    lines = [
        f"{printable(report.name)}: {report.format}, {report.width}×{report.height}",
        "generated: " + _generated(report),
    ]
    if report.description:
        lines.append(f"label: {printable(report.description)}")
    if report.settings_error:
        lines.append(f"settings: unreadable ({report.settings_error})")
    elif report.settings:
        lines += _settings(report.settings)
    else:
        lines.append("settings: none in the file")
    lines.append("content credentials: " + _credentials(report.credentials))
    if report.pixels_error:
        lines.append(f"pixel data: damaged ({report.pixels_error})")
    mark = report.watermark
    if not mark.checked:
        lines.append(f"watermark: not checked ({mark.reason})")
    else:
        verdict = "found" if mark.found else "not found"
        where = "" if mark.scale in (None, 1.0) else f" after undoing a {mark.scale:g}× resize"
        lines.append(f"watermark: {verdict} ({mark.bit_accuracy:.0%} of bits{where})")
    return lines


def _generated(report) -> str:
    if report.generated:
        return "yes (FaceStudio)"
    if report.ai_generated:
        return "yes, says its content credentials (another generator, not FaceStudio)"
    return "no sign of FaceStudio generation"


def _settings(settings: dict) -> list[str]:
    lines = [
        f"settings: {_shown(settings.get('generator'))}, model {_shown(settings.get('model'))}, "
        f"seed {_shown(settings.get('seed'))}, {_shown(settings.get('steps'))} steps"
    ]
    people = settings.get("people")
    for number, person in enumerate(people if isinstance(people, list) else [], start=1):
        sources = person.get("sources") if isinstance(person, dict) else None
        sources = sources if isinstance(sources, list) else []
        photos = [s.get("photo") for s in sources if isinstance(s, dict)]
        lines.append(f"  person {number}: {', '.join(_shown(p) for p in photos)}")
    return lines


def _shown(value) -> str:
    """A setting as text: strings and numbers bounded, anything else (or nothing) '?'."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return "?"
    return printable(str(value), 80)


def _credentials(credentials) -> str:
    if not credentials.present:
        return "none"
    signer = printable(credentials.signer or "unknown signer", 80)
    if credentials.intact:
        trust = ", signer not on a trust list" if credentials.untrusted_signer else ""
        what = "AI-generated" if credentials.generated else "no AI-generation claim"
        return f"valid, image unaltered since signing ({what}; signed by {signer}{trust})"
    return f"INVALID: {', '.join(credentials.problems) or credentials.state} (signed by {signer})"
