"""The model card for people: the JSON card rendered as Markdown."""

from __future__ import annotations

from typing import Any


def _fmt(x: Any) -> str:
    if x is None:
        return "n/a"
    if isinstance(x, float):
        return f"{x:.3f}"
    return f"{x:,}" if isinstance(x, int) else str(x)


def markdown(card: dict[str, Any]) -> str:
    d, t = card["data"], card["thresholds"]
    test = card["metrics"]["test"]
    lines = [
        f"# Model {card['version']}",
        "",
        f"Created {card['created']} (seed {card['seed']}, scikit-learn {card['sklearn_version']}).",
        f"Estimator: {card['estimator']}.",
        "",
        "## Training data",
        f"- events: `{d['events']}`, sha256 `{d['sha256']}`",
        f"- {d['lines']:,} lines ({d['rejected']:,} rejected), {d['persons']:,} persons, "
        f"{d['days']} days, {d['case_reports']:,} case reports",
        "- days: " + ", ".join(f"{k} {a}-{b}" for k, (a, b) in d["split_days"].items()),
        f"- labels: {card['label_rule']}",
        "",
        "## Thresholds",
        f"- alert when calibrated P(fraud) >= {t['alert']:.4f} "
        f"(about {t['capacity_per_day']} persons a day on the calibration days)",
        *(f"- the model alone raises a task at the {p} point from P(fraud) >= {v:.4f} (within "
          f"{t['budgets_per_10k_day'][p]:g} tasks on honest rows per 10,000 persons a day on the "
          "calibration days)" for p, v in (t.get("points") or {}).items()),
        "",
        "## Test days (held out by time)",
        "",
        "| point | rows | fraud | PR-AUC | ROC-AUC | Brier | ECE | precision@k | recall@k | "
        "rules precision / recall | model precision at rules' recall |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |",
    ]
    for p, r in test["points"].items():
        ru = r["rules"]
        lines.append(
            f"| {p} | {_fmt(r['rows'])} | {_fmt(r['positives'])} | {_fmt(r['pr_auc'])} | "
            f"{_fmt(r['roc_auc'])} | {_fmt(r['brier'])} | {_fmt(r['calibration']['ece'])} | "
            f"{_fmt(r['at_capacity']['precision'])} | {_fmt(r['at_capacity']['recall'])} | "
            f"{_fmt(ru['rule_precision'])} / {_fmt(ru['rule_recall'])} | "
            f"{_fmt(ru['model_precision_at_rule_recall'])} |")
    er = test["early_recall"]["model"].get("all", {})
    lines += ["", f"Episodes alerted before their first fraudulent transfer completed: "
              f"{_fmt(er.get('recall'))} ({er.get('alerted_before_first_transfer', 0)} of "
              f"{er.get('episodes', 0)})."]
    abl = test.get("ablation")
    if abl:
        lines += ["", "Without call features (recall at equal alert volume, relative change): "
                  f"transfer {_fmt(abl['transfer']['relative_change_in_recall_at_capacity'])}, "
                  f"contact {_fmt(abl['contact']['relative_change_in_recall_at_capacity'])}, "
                  f"both points {_fmt(abl['combined']['relative_change_in_recall'])}."]
    lines += ["", "## Features", ""]
    for p, info in card["points"].items():
        lines.append(f"- **{p}** ({info['calibration']} calibration, {info['train_rows']:,} "
                     f"training rows, {info['train_positives']:,} fraud): "
                     + ", ".join(f"`{n}`" for n in info["features"]))
    return "\n".join(lines) + "\n"
