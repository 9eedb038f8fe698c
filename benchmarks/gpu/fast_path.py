"""The opt-in fast path, each step timed against eager in the same loop: channels-last memory
format, `torch.compile` of the U-Net, and CUDA graphs (compile's "reduce-overhead" mode).

The masked multi-identity attention already runs through fused scaled-dot-product attention
with a boolean mask (no hand-written softmax); under `torch.compile` the suite also counts
how many graphs a multi-person call compiles, since its processors are installed per call.
"""

from __future__ import annotations

import time
from contextlib import contextmanager

import torch

from gpu.inference import facestudio_call, interleaved, medians, seconds
from gpu.runner import SectionSkipped
from gpu.settings import SuiteSettings


def memory_format(state: dict, channels_last: bool) -> None:
    """Put the U-Net and VAE weights in channels-last (or back); cheap next to one image."""
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    pipe = state["facestudio"]
    for module in (pipe.unet, pipe.vae):
        module.to(memory_format=fmt)


@contextmanager
def unet_swapped(pipe, unet):
    """Run `pipe` with another U-Net (a compiled wrapper of the same weights) for a while."""
    original = pipe.unet
    pipe.unet = unet
    try:
        yield
    finally:
        pipe.unet = original


def channels_last_section(state: dict) -> dict:
    settings: SuiteSettings = state["settings"]
    one, three = facestudio_call(state, 1), facestudio_call(state, 3)

    def in_format(channels_last: bool, function):
        def run():
            memory_format(state, channels_last)
            function()

        return run

    # The format switch happens inside the timed call; it copies weights once (milliseconds)
    # and is paid equally by both variants.
    times = interleaved(
        state,
        {
            "eager_1_person": in_format(False, one),
            "channels_last_1_person": in_format(True, one),
            "channels_last_3_people": in_format(True, three),
        },
        settings.repeats,
    )
    memory_format(state, True)  # the compiled variants build on channels-last
    median = medians(times)
    return {
        "median_s_per_image": median,
        "speedup_channels_last": round(
            median["eager_1_person"] / median["channels_last_1_person"], 3
        ),
        "ratio_3_people_vs_1_channels_last": round(
            median["channels_last_3_people"] / median["channels_last_1_person"], 3
        ),
    }


def channels_last_rows(result: dict) -> list[tuple[str, str]]:
    rows = [(f"{k} (s/image)", f"{v:.4f}") for k, v in result["median_s_per_image"].items()]
    return [
        *rows,
        ("speed-up channels-last", f"{result['speedup_channels_last']:.3f}×"),
        ("3 people vs 1 (channels-last)", f"{result['ratio_3_people_vs_1_channels_last']:.3f}"),
    ]


def graph_count() -> int:
    from torch._dynamo.utils import counters

    return int(counters["stats"]["unique_graphs"])


def compiled_section(state: dict, cuda_graphs: bool) -> dict:
    """Compile the U-Net (the first call pays it), check it computes what eager does, then
    time eager and compiled in turn; 3 people too when the time box still holds a compile."""
    settings: SuiteSettings = state["settings"]
    if cuda_graphs and not torch.cuda.is_available():
        raise SectionSkipped("CUDA graphs need a CUDA device")
    pipe = state["facestudio"]
    options = {"backend": settings.compile_backend}
    if settings.compile_backend == "inductor":
        options["mode"] = "reduce-overhead" if cuda_graphs else "default"
    torch._dynamo.reset()
    compiled = torch.compile(pipe.unet, **options)
    one = facestudio_call(state, 1)
    graphs = graph_count()
    with unet_swapped(pipe, compiled):
        first_s = seconds(one)
    result = {
        "compile": options,
        "first_call_s": round(first_s, 2),
        "graphs_compiled_1_person": graph_count() - graphs,
        "relative_difference_1_person": difference(state, compiled, 1),
    }

    def with_compiled(function):
        def run():
            with unet_swapped(pipe, compiled):
                function()

        return run

    median = medians(
        interleaved(state, {"eager": one, "compiled": with_compiled(one)}, settings.repeats)
    )
    result["median_s_per_image"] = median
    result["speedup"] = round(median["eager"] / median["compiled"], 3)
    fits = time.monotonic() + 2 * first_s + 4 * median["eager"] < state["box_end"]
    if fits or settings.compile_3_people == "always":
        result.update(three_people(state, compiled, median["compiled"]))
    else:
        result["three_people"] = "not run: the time box holds no second compile"
    return result


def three_people(state: dict, compiled, one_person_s: float) -> dict:
    """Graphs compiled by each of two 3-person calls (a count above 0 in the second means
    every call recompiles), the compiled 3-person s/image, and agreement with eager."""
    pipe, three = state["facestudio"], facestudio_call(state, 3)
    counts, times = [], []
    with unet_swapped(pipe, compiled):
        for _ in range(2):
            before = graph_count()
            times.append(seconds(three))
            counts.append(graph_count() - before)
    return {
        "graphs_per_3_people_call": counts,
        "compiled_3_people_s": round(times[-1], 4),
        "ratio_3_people_vs_1_compiled": round(times[-1] / one_person_s, 3),
        "relative_difference_3_people": difference(state, compiled, 3),
    }


def difference(state: dict, compiled, people: int) -> float:
    """‖compiled − eager‖ / ‖eager‖ of the final latents of one call (same seed and noise).
    Recorded, not judged: a broken compile gives about 1 or more, while rounding differences
    of a correct one grow through the steps but stay far below that."""
    pipe, call = state["facestudio"], facestudio_call(state, people, output_type="latent")
    eager = call().images.float()
    with unet_swapped(pipe, compiled):
        fast = call().images.float()
    return round(float((fast - eager).norm() / eager.norm()), 5)


def compile_section(state: dict) -> dict:
    return compiled_section(state, cuda_graphs=False)


def cuda_graphs_section(state: dict) -> dict:
    return compiled_section(state, cuda_graphs=True)


def compiled_rows(result: dict) -> list[tuple[str, str]]:
    median = result["median_s_per_image"]
    rows = [
        ("first call, compiling (s)", f"{result['first_call_s']:.1f}"),
        ("eager / compiled (s/image)", f"{median['eager']:.4f} / {median['compiled']:.4f}"),
        ("speed-up", f"{result['speedup']:.3f}×"),
    ]
    rows.append(("relative difference to eager", f"{result['relative_difference_1_person']:.2e}"))
    if "graphs_per_3_people_call" in result:
        rows.append(("graphs compiled per 3-person call", str(result["graphs_per_3_people_call"])))
        rows.append(("3 people vs 1, compiled", f"{result['ratio_3_people_vs_1_compiled']:.3f}"))
    return rows


def fast_path_s_per_image(sections: dict) -> float | None:
    """The best 1-person s/image of the fast-path sections that ran."""
    found = [
        sections[name]["median_s_per_image"][key]
        for name, key in (
            ("channels_last", "channels_last_1_person"),
            ("compile", "compiled"),
            ("cuda_graphs", "compiled"),
        )
        if sections.get(name, {}).get("status") == "ok"
    ]
    return min(found) if found else None
