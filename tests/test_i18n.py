"""The catalogues: every key in every language, the same fields, and t() picking the right one."""

from __future__ import annotations

import pytest

from salesplan import i18n
from salesplan.errors import SalesplanError
from salesplan.i18n import LANGUAGES, catalogue, current_lang, fields, normalize_lang, t


def test_every_language_has_a_catalogue_file():
    for code in LANGUAGES:
        assert catalogue(code), f"salesplan/locale/{code}.toml is empty"


@pytest.mark.parametrize("lang", [code for code in LANGUAGES if code != "en"])
def test_every_key_is_translated(lang):
    english, other = catalogue("en"), catalogue(lang)
    missing = sorted(set(english) - set(other))
    extra = sorted(set(other) - set(english))
    assert not missing, f"salesplan/locale/{lang}.toml lacks {len(missing)} key(s): {missing}"
    assert not extra, f"salesplan/locale/{lang}.toml has {len(extra)} key(s) English lacks: {extra}"


@pytest.mark.parametrize("lang", list(LANGUAGES))
def test_no_text_is_empty_and_fields_match_english(lang):
    english, texts = catalogue("en"), catalogue(lang)
    empty = [k for k, v in texts.items() if not v.strip()]
    assert not empty, f"{lang}: empty texts {empty}"
    differ = {k: (sorted(fields(english[k])), sorted(fields(v))) for k, v in texts.items()
              if k in english and fields(english[k]) != fields(v)}
    assert not differ, f"{lang}: format fields differ from English (english, {lang}): {differ}"


def test_chinese_texts_are_chinese():
    # A key copied over untranslated would pass the key check; the page texts must be in Chinese.
    english, chinese = catalogue("en"), catalogue("zh")
    same = [k for k, v in chinese.items() if v == english[k] and any(c.isalpha() for c in v)]
    assert not same, f"zh texts identical to English: {same}"


def test_t_fills_fields_and_follows_the_environment(monkeypatch):
    monkeypatch.setenv(i18n.ENV_VAR, "zh_CN.UTF-8")
    assert current_lang() == "zh"
    assert t("landing.rows", rows="1,234") == "1,234 行"
    assert t("landing.rows", "en", rows="1,234") == "1,234 rows"
    monkeypatch.setenv(i18n.ENV_VAR, "fr")  # no such catalogue: English
    assert t("landing.title") == catalogue("en")["landing.title"]
    monkeypatch.delenv(i18n.ENV_VAR)
    assert current_lang() == "en"


def test_unknown_key_falls_back_to_english_then_the_key(monkeypatch):
    monkeypatch.setitem(catalogue("en"), "test.only_english", "only in English")
    assert t("test.only_english", "zh") == "only in English"
    assert t("test.no_such_key", "zh") == "test.no_such_key"


def test_unknown_language_asked_by_name_is_an_error():
    with pytest.raises(SalesplanError, match="choose one of en, zh"):
        t("landing.title", "fr")


@pytest.mark.parametrize("tag, code", [("zh", "zh"), ("zh-TW", "zh"), ("EN_us", "en"), ("", None), ("de", None)])
def test_normalize_lang(tag, code):
    assert normalize_lang(tag) == code


def test_every_app_notebook_has_a_title_and_a_question_in_every_language():
    from pathlib import Path

    notebooks = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))
    assert notebooks
    for lang in LANGUAGES:
        for nb in notebooks:
            for field in ("title", "answers"):
                key = f"apps.{nb.stem}.{field}"
                assert t(key, lang) != key, f"{key} has no {lang} text in salesplan/locale/{lang}.toml"


def test_headers_come_from_the_columns_table_with_overrides_and_a_readable_fallback():
    from salesplan.i18n import headers, label

    assert headers(["rep_id", "win_rate"], "zh") == {"rep_id": "销售代表", "win_rate": "赢单率"}
    assert headers(["rep_id", "win_rate"], "en") == {"rep_id": "rep", "win_rate": "win rate"}
    assert headers(["units"], "zh", units="reps") == {"units": t("columns.reps", "zh")}
    assert headers(["no_such_column"], "zh") == {"no_such_column": "no such column"}
    assert label("levels.region", "region", "zh") == "区域"
    assert label("levels.district", "district", "zh") == "district"


def test_every_level_and_kpi_of_the_package_has_a_text():
    from salesplan.performance import KPIS
    from salesplan.summary import KPI_LABELS
    from salesplan.targets._data import LEVEL_COLUMNS

    for lang in LANGUAGES:
        texts = catalogue(lang)
        assert not [k for k in [*KPIS, *KPI_LABELS] if f"kpis.{k}" not in texts]
        assert not [lv for lv in LEVEL_COLUMNS if f"levels.{lv}" not in texts]


def test_page_sentences_follow_the_language(monkeypatch, capsys):
    import pandas as pd

    from salesplan.ui.page import missing, needs

    tx = pd.DataFrame({"order_date": pd.to_datetime(["2024-01-01"]), "revenue": [1.0]})
    assert missing(tx, columns=["channel", "region"], lang="zh") == "添加 `channel` 和 `region` 列"
    monkeypatch.setenv(i18n.ENV_VAR, "zh")
    assert not needs(tx, columns=["channel"], to="see which channels gain share")
    assert "添加 `channel` 列，即可查看哪些渠道的份额在增加。" in capsys.readouterr().out
    assert not needs(tx, columns=["channel"], to="see something new")  # no text: the phrase as given
    assert "即可see something new" in capsys.readouterr().out
