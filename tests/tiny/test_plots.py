"""The figures, inspected as matplotlib objects (issue 11 item 19; issue 9's by_initial)."""

import warnings

import pytest

from repcheck import diff_models, plotkit, plots, probe
from repcheck.compare import run_compare
from repcheck.decoding import parse_setting

SENTENCES = ["Paris is the capital of France.", "Water boils.", "The general led his army.", "I like this."]


@pytest.fixture(scope="module")
def set_doc(tiny_llama_model):
    return probe(tiny_llama_model, SENTENCES, repeats=4).to_dict()


def _lines(ax):
    return [line for line in ax.get_lines() if line.get_xdata() is not None and len(line.get_xdata())]


def test_one_copy_has_one_integer_tick(tiny_llama_model, tmp_path):
    doc = probe(tiny_llama_model, SENTENCES[0], repeats=1).to_dict()
    fig = plots.plot_curve(doc, tmp_path / "c.png")
    assert list(fig.axes[0].get_xticks()) == [0]
    fig = plots.plot_bars(doc, tmp_path / "b.png")
    assert list(fig.axes[0].get_xticks()) == [0]


def test_curves_are_told_apart_by_style(set_doc, tmp_path):
    fig = plots.plot_curve(set_doc, tmp_path / "c.png")
    main, side = fig.axes
    styles = {(line.get_linestyle(), line.get_marker()) for line in _lines(main)}
    assert len(styles) == 4  # TP, MP, IP, WR each visible even where two are equal
    assert {t.get_text() for t in side.get_legend().get_texts()} == {"first token", "middle token", "last token"}
    assert "N=4" in main.get_title()


def test_bars_of_a_set_have_error_bars_and_many_copies_become_lines(set_doc, tiny_llama_model, tmp_path):
    from matplotlib.container import BarContainer

    fig = plots.plot_bars(set_doc, tmp_path / "b.png")
    bars = [c for c in fig.axes[0].containers if isinstance(c, BarContainer)]
    assert len(bars) == 2 and all(c.errorbar is not None for c in bars)
    long_doc = probe(tiny_llama_model, "Hi.", repeats=40).to_dict()
    fig = plots.plot_bars(long_doc, tmp_path / "long.png")
    assert not fig.axes[0].patches and len(_lines(fig.axes[0])) == 2


def test_by_initial_bins_sentences_by_tp0(set_doc, tmp_path):
    info = set_doc["initial_probability"]
    assert len(info["bins"]) == 2 and sum(b["n"] for b in info["bins"]) == 4
    firsts = sorted(s["per_copy"][0]["tp"] for s in set_doc["sentences"])
    assert info["bins"][0]["tp_first_range"] == pytest.approx([firsts[0], firsts[1]])
    fig = plots.plot_by_initial(set_doc, tmp_path / "i.png")
    assert len(_lines(fig.axes[0])) == 2 and "Spearman" in fig.axes[0].texts[0].get_text()


def test_compare_metrics_split_by_direction(tiny_gpt2_model, tmp_path):
    settings = [parse_setting("greedy"), parse_setting("repetition_penalty=1.3,penalty_last_n=16,presence_penalty=0.5")]
    doc = run_compare(tiny_gpt2_model, settings, ["Paris is", "Water"], max_new_tokens=6).to_dict()
    fig = plots.plot_compare_metrics(doc, tmp_path / "m.png")
    lower, higher = fig.axes
    assert lower.get_title() == "lower is better" and higher.get_title() == "higher is better"
    assert {t.get_text() for t in higher.get_legend().get_texts()} == {"distinct-2"}
    # one rotated line per setting, long names cut with an ellipsis (wrapped labels overlapped)
    ticks = lower.get_xticklabels()
    assert all(len(t.get_text()) <= 32 and "\n" not in t.get_text() and t.get_rotation() > 0 for t in ticks)
    assert ticks[1].get_text().endswith("…")


def test_diff_figures_show_dtype_paired_deltas_and_no_double_colon(tiny_llama_model, tiny_llama_repeated, tmp_path):
    from repcheck import load_model

    doc = diff_models(
        [tiny_llama_model, load_model(str(tiny_llama_repeated), device="cpu")], SENTENCES, repeats=3
    ).to_dict()
    fig = plots.plot_diff_curves(doc, tmp_path / "c.png")
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert all(label.count(":") == 1 for label in labels) and all("(float32)" in label for label in labels)
    fig = plots.plot_diff_bars(doc, tmp_path / "b.png")
    assert "paired difference" in fig.axes[-1].get_title(loc="left") and len(fig.axes) == 3
    assert all("(float32)" in ax.get_title(loc="left") for ax in fig.axes[:2])


def test_chinese_and_emoji_draw_without_glyph_warnings(tiny_llama_model, tmp_path):
    """Where no installed font has a glyph, matplotlib warns for every character; the figures
    fall back silently. The control shows the warning exists here (no CJK font installed), so
    the check on the figures can fail."""
    from matplotlib.figure import Figure

    doc = probe(tiny_llama_model, "北京是中国的首都 🙂", repeats=2).to_dict()
    with warnings.catch_warnings(record=True) as control:
        warnings.simplefilter("always")
        fig = Figure()
        fig.subplots().set_title("北京是中国的首都 🙂", fontfamily=plotkit.font_families())
        fig.savefig(tmp_path / "control.png")
    missing = [w for w in control if "Glyph" in str(w.message)]
    from matplotlib import font_manager

    installed = {f.name for f in font_manager.fontManager.ttflist}
    assert plotkit.font_families() == ["DejaVu Sans", *[f for f in plotkit.FALLBACK_FONTS if f in installed]]
    if len(plotkit.font_families()) == 1:
        assert missing, "without a CJK font the control must warn"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        plots.probe_figures(doc, tmp_path, "png")
    assert not [w for w in caught if "Glyph" in str(w.message)]


def test_plots_do_not_change_the_global_style(set_doc, tmp_path):
    import matplotlib

    before = list(matplotlib.rcParams["font.sans-serif"])
    plots.plot_curve(set_doc, tmp_path / "c.png")
    assert matplotlib.rcParams["font.sans-serif"] == before


def test_layout_figure_overlays_each_result_with_its_band(tiny_llama_model, tmp_path):
    docs = {
        "plain": probe(tiny_llama_model, SENTENCES, repeats=3).to_dict(),
        "again": probe(tiny_llama_model, SENTENCES[:1], repeats=4).to_dict(),
    }
    fig = plots.plot_layouts(docs, tmp_path / "l.png", "layouts")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["plain, TP", "plain, MP", "again, TP", "again, MP"]
    assert ax.get_title() == "layouts" and (tmp_path / "l.png").is_file()
    assert len(ax.collections) >= 1  # the 95% band of the result with several sentences
