"""Derived numbers (fraction of peak, speed-ups, memory ratios) and markdown/JSON reports."""

from __future__ import annotations

import copy
import datetime
import json
import os
import platform
import statistics
from typing import Sequence


def merge_rounds(records: Sequence[dict]) -> list[dict]:
    """One record per configuration when ``--rounds`` ran the list several times in rotation.

    The merged record is the round with the median img/s (matmul: the best peak), with every
    round's img/s in run order as ``round_images_per_s`` so speed-ups can be taken per round
    (:func:`speedup`): configurations of one round ran minutes apart, and a shared host's speed
    drifts over longer spans.
    """
    groups: dict[str, list[dict]] = {}
    for r in records:
        groups.setdefault(r["label"], []).append(r)
    merged = []
    for rounds in groups.values():
        ok = [r for r in rounds if r["status"] == "ok"]
        if len(rounds) == 1 or not ok:
            merged.append(rounds[-1])
            continue
        if rounds[0]["config"]["kind"] == "matmul":
            pick = max(ok, key=lambda r: r["result"].get("peak_flops") or 0.0)
        else:
            ordered = sorted(ok, key=lambda r: r["result"].get("images_per_s") or 0.0)
            pick = ordered[(len(ordered) - 1) // 2]
        record = copy.deepcopy(pick)
        record["rounds"] = len(rounds)
        record["result"]["round_images_per_s"] = [
            r["result"].get("images_per_s") if r["status"] == "ok" else None for r in rounds]
        failed = [f"round {i + 1}: {r['status']} {r.get('reason', '')}".strip()
                  for i, r in enumerate(rounds) if r["status"] != "ok"]
        if failed:
            record["round_failures"] = failed
        merged.append(record)
    return merged


def speedup(result: dict, base: dict) -> float:
    """img/s ratio; with rounds on both sides, the median of the per-round ratios."""
    a, b = result.get("round_images_per_s"), base.get("round_images_per_s")
    if a and b and len(a) == len(b) and all(a) and all(b):
        return statistics.median(x / y for x, y in zip(a, b))
    return result["images_per_s"] / base["images_per_s"]


def _peak_key(record: dict) -> tuple[str, str, bool]:
    c = record["config"]
    return c["precision"], record["onednn_env"], bool(c.get("bf16_math"))


def _peaks(records: Sequence[dict]) -> dict[tuple[str, str, bool], float]:
    peaks: dict[tuple[str, str, bool], float] = {}
    for r in records:
        if r["config"]["kind"] == "matmul" and r["status"] == "ok":
            key = _peak_key(r)
            res = r["result"]
            best = res.get("peak_flops") or res["flops_per_step"] / min(res["step_times_s"])
            peaks[key] = max(peaks.get(key, 0.0), best)
    return peaks


def _peak_for(record: dict, peaks: dict) -> float | None:
    """Same precision, oneDNN setting and math mode if measured, else the best matmul of that
    precision and math mode."""
    key = _peak_key(record)
    if key in peaks:
        return peaks[key]
    same = [v for (p, _, m), v in peaks.items() if (p, m) == (key[0], key[2])]
    return max(same) if same else None


def _key(config: dict, **changes) -> tuple:
    c = {**config, **changes}
    return tuple(sorted((k, v) for k, v in c.items() if k not in ("warmup", "iters")))


def _peer_comparisons(torch_record: dict, records: Sequence[dict]) -> list[dict]:
    """Speed-ups of the plain Keras rows of the same size and precision over a PyTorch-port row."""
    r, c, res = torch_record, torch_record["config"], torch_record["result"]
    same = [o for o in records if o["status"] == "ok" and o["config"].get("framework") == "keras"
            and all(o["config"][k] == c[k] for k in ("kind", "model", "precision", "resolution",
                                                      "batch_size", "width_multiplier", "classes"))
            and bool(o["config"].get("bf16_math")) == bool(c.get("bf16_math"))
            and not any(o["config"].get(k) for k in ("fold_bn", "recompute", "jit_compile", "keras_sgd",
                                                      "keras_bn"))
            and o["onednn_env"] in ("1", "(TF default)")]
    return [{"what": f"{o['label']} vs {r['label']}", "speedup": speedup(o["result"], res)}
            for o in same]


def summarize(records: Sequence[dict]) -> dict:
    """Adds ``fraction_of_peak`` to model records and computes the benchmark's comparisons.

    Comparisons are only made between records of the same run (same machine, same load window):
    precision speed-ups (vs float32, same everything else), XLA speed-ups, recomputation's memory
    saving and time cost, oneDNN on vs off, and peak training memory relative to ResNet-38 A.
    """
    peaks = _peaks(records)
    by_key = {_key(r["config"], onednn=r["onednn_env"]): r for r in records if r["status"] == "ok"}
    comparisons = []
    for r in records:
        if r["status"] != "ok" or r["config"]["kind"] not in ("inference", "training"):
            continue
        c, res = r["config"], r["result"]
        peak = _peak_for(r, peaks)
        res["peak_matmul_flops"] = peak
        res["fraction_of_peak"] = res["achieved_flops"] / peak if peak else None

        def other(**changes):
            return by_key.get(_key(c, onednn=r["onednn_env"], **changes))

        if c["precision"] != "float32" and (base := other(precision="float32")):
            comparisons.append({"what": f"{r['label']} vs float32", "speedup":
                                speedup(res, base["result"])})
        if c.get("fold_bn"):
            if base := other(fold_bn=False):
                comparisons.append({"what": f"{r['label']} vs Keras BN", "speedup":
                                    speedup(res, base["result"])})
            if c["precision"] != "float32" and (base := other(fold_bn=False, precision="float32")):
                comparisons.append({"what": f"{r['label']} vs float32 with Keras BN", "speedup":
                                    speedup(res, base["result"])})
        if c["jit_compile"] and (base := other(jit_compile=False)):
            comparisons.append({"what": f"{r['label']} vs no XLA", "speedup":
                                speedup(res, base["result"])})
        for flag, baseline in (("recompute", "no recompute"), ("keras_sgd", "FusedSGD"),
                               ("keras_bn", "fused BN"), ("bf16_math", "strict float32")):
            if c.get(flag) and (base := other(**{flag: False})):
                comparisons.append({"what": f"{r['label']} vs {baseline}", "speedup": speedup(res, base["result"]),
                                    **_memory_ratios(res, base["result"])})
        if r["onednn_env"] == "1" and (base := by_key.get(_key(c, onednn="0"))):
            comparisons.append({"what": f"{r['label']} vs oneDNN off", "speedup":
                                speedup(res, base["result"])})
        if c.get("framework") == "torch":
            comparisons += _peer_comparisons(r, records)
        if c["kind"] == "training" and c["model"] != "resnet38_a" and c["width_multiplier"] == 1:
            ref = by_key.get(_key(c, model="resnet38_a", onednn=r["onednn_env"], classes=c["classes"]))
            if ref:
                comparisons.append({"what": f"peak training memory {c['model']} / resnet38_a "
                                            f"({c['resolution']}px b{c['batch_size']}, {c['precision']})",
                                    **_memory_ratios(res, ref["result"])})
    pipelines = [r["result"] for r in records if r["config"]["kind"] == "pipeline" and r["status"] == "ok"]
    return {"peaks": {f"{p} (oneDNN {o}{', bf16 math' if m else ''})": v for (p, o, m), v in peaks.items()},
            "comparisons": comparisons, "pipelines": pipelines,
            "crashes": [{"label": r["label"], "reason": r.get("reason", "")}
                        for r in records if r["status"] == "crashed"]}


def _memory_ratios(result: dict, base: dict) -> dict:
    """Peak-memory and steps'-memory ratios of ``result`` to ``base``."""
    working, base_working = _working(result), _working(base)
    return {"peak_memory_ratio": result["peak_mib"] / base["peak_mib"],
            "working_memory_ratio": working / base_working
            if working is not None and base_working else None}


def _working(result: dict) -> float | None:
    """Memory the steps took: the TF allocator's peak minus what it held before the first step
    (weights, optimizer slots, inputs), where it keeps statistics (GPU; CPU with the BFC
    allocator); else peak RSS minus the RSS before the first step."""
    if "alloc_peak_mib" in result and "alloc_before_mib" in result:
        return result["alloc_peak_mib"] - result["alloc_before_mib"]
    if "rss_before_mib" in result:
        return result["peak_mib"] - result["rss_before_mib"]
    return result.get("peak_mib")


def _fmt(v, spec: str = ".3g") -> str:
    return "–" if v is None else format(v, spec)


def machine_info(records: Sequence[dict]) -> dict:
    """Machine, versions and load of the run (from the first successful record)."""
    device = next((r["result"]["device"] for r in records if r["status"] == "ok"), {})
    loads = [x for r in records if r["status"] == "ok" for x in r["result"].get("loadavg_1m", [])]
    return {"device": device, "platform": platform.platform(), "python": platform.python_version(),
            "loadavg_1m_range": [min(loads), max(loads)] if loads else None,
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}


def format_markdown(records: Sequence[dict], summary: dict, title: str = "Benchmark") -> str:
    """The report as markdown: machine, peaks, one row per configuration, comparisons, crashes."""
    m = machine_info(records)
    dev = m["device"]
    lines = [f"## {title}", "",
             f"Machine: {dev.get('device_name', '?')} ({dev.get('device', '?')}"
             + (f", {dev['cpu_count']} cores" if "cpu_count" in dev else "") + f"); "
             f"TF {dev.get('tf', '?')}, Keras {dev.get('keras', '?')}, Python {m['python']}; {m['date']}. "
             f"1-min load average during the run: {_fmt(m['loadavg_1m_range'] and m['loadavg_1m_range'][0])}"
             f"–{_fmt(m['loadavg_1m_range'] and m['loadavg_1m_range'][1])}.", ""]
    if summary["peaks"]:
        lines.append("Peak matmul (same run): " + "; ".join(
            f"{k} {v / 1e9:.0f} GFLOP/s" for k, v in summary["peaks"].items()) + ".")
        lines.append("")
    lines += ["| configuration | status | img/s (median) | img/s (best) | step s | GFLOP/img fwd "
              "| achieved GFLOP/s | of peak | peak mem MiB | steps' mem MiB | CPU util | load 1m |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in records:
        res = r.get("result", {})
        status = r["status"] if r["status"] == "ok" else f"**{r['status']}**: {r.get('reason', '')[:80]}"
        if r["config"]["kind"].startswith("interleaved") and res:
            status += " (" + "; ".join(
                f"{name} {v['images_per_s']:.3g} img/s, {v['speedup']:.2f}×"
                for name, v in res["variants"].items()) + ")"
        if r["config"]["kind"] == "agreement" and res:
            status += (f" (agreement {100 * res['agreement']:.2f}% of {res['num_compared']}"
                       + (f"; top-1 {100 * res['reference_top1']:.2f}% → {100 * res['candidate_top1']:.2f}%"
                          if "reference_top1" in res else "") + ")")
        if r["config"]["kind"] == "pipeline" and res:
            status += (f" (plain decode {res['decode_images_per_s']:.0f} img/s; ratio "
                       f"{res['pipeline_vs_decode']:.2f}; {res.get('jpeg_bytes_per_pixel', 0):.2f} B/px)")
        if r.get("rounds") and res.get("round_images_per_s") and any(res["round_images_per_s"]):
            status += f" (median of {r['rounds']} rounds: " + "/".join(
                _fmt(v) for v in res["round_images_per_s"]) + " img/s)"
        gflop = res.get("flops_per_image")
        lines.append("| " + " | ".join([
            r["label"], status, _fmt(res.get("images_per_s")), _fmt(res.get("best_images_per_s")),
            _fmt(res.get("median_step_s")),
            _fmt(gflop / 1e9 if gflop else None), _fmt(res["achieved_flops"] / 1e9 if "achieved_flops" in res else None),
            _fmt(res.get("fraction_of_peak"), ".2f"), _fmt(res.get("peak_mib"), ".0f"),
            _fmt(_working(res) if "peak_mib" in res else None, ".0f"), _fmt(res.get("cpu_utilization"), ".2f"),
            "/".join(_fmt(x, ".1f") for x in res.get("loadavg_1m", [])) or "–"]) + " |")
    if summary["comparisons"]:
        lines += ["", "| comparison | speed-up | peak memory ratio | steps' memory ratio |", "|---|---|---|---|"]
        for c in summary["comparisons"]:
            lines.append(f"| {c['what']} | {_fmt(c.get('speedup'), '.2f')} | "
                         f"{_fmt(c.get('peak_memory_ratio'), '.2f')} | {_fmt(c.get('working_memory_ratio'), '.2f')} |")
    lines += ["", "GFLOP/img: Conv2D/Dense 2×MACs of one forward pass, counted from the layers' real shapes; "
              "training achieved FLOP/s use 3× that per image. \"of peak\": achieved / peak matmul of the same "
              "precision (and oneDNN setting and math mode) measured in this run. Peak memory: GPU allocator "
              "peak, or the benchmark process's peak RSS on CPU (TF runtime and weights included). Steps' memory: the TF "
              "allocator's peak during the steps minus what it held before the first step (weights, optimizer "
              "slots, inputs), i.e. activations, gradients and workspace (CPU: BFC allocator; without allocator "
              "statistics, peak RSS − RSS before the first step). Peak matmul = best timed step; model rows use the median step. "
              "CPU util = process CPU seconds / (wall seconds × cores) per step: well below 1 means other "
              "load on the machine took the cores."]
    return "\n".join(lines) + "\n"


def write_report(records: Sequence[dict], output_dir: str, title: str = "Benchmark") -> dict:
    """Writes ``benchmark.json`` and ``benchmark.md`` under ``output_dir``; returns the summary."""
    os.makedirs(output_dir, exist_ok=True)
    merged = merge_rounds(records)
    summary = summarize(merged)
    report = {"machine": machine_info(merged), "records": merged, "summary": summary}
    if len(merged) < len(records):
        report["round_records"] = list(records)
    with open(os.path.join(output_dir, "benchmark.json"), "w") as f:
        json.dump(report, f, indent=1)
    with open(os.path.join(output_dir, "benchmark.md"), "w") as f:
        f.write(format_markdown(merged, summary, title))
    return summary
