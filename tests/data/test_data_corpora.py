"""Each text-corpus parser on a tiny fixture in the real file layout, and on malformed files."""

from __future__ import annotations

import bz2

import pytest

from pyramid_bert.data.corpora import (
    read_bbc_news,
    read_movie_sentiment_score,
    read_pang_lee_reviews,
    read_rt_polarity,
    read_sms_spam,
    read_trec,
)
from pyramid_bert.errors import DataError


def test_rt_polarity_drops_plot_rows_and_keeps_multiline_text(tmp_path):
    path = tmp_path / "rt.csv.bz2"
    path.write_bytes(bz2.compress(
        b'category,text,movie_name,has_plot_and_reviews\n'
        b'plot,"A synopsis, not a review.",m1,True\n'
        b'fresh,"Great, funny\nand warm.",m1,True\n'
        b'rotten,Dull.,m2,False\n'
    ))
    texts, labels = read_rt_polarity(path)
    assert texts == ["Great, funny\nand warm.", "Dull."]
    assert labels == ["fresh", "rotten"]


def test_rt_polarity_without_category_column_names_it(tmp_path):
    path = tmp_path / "rt.csv.bz2"
    path.write_bytes(bz2.compress(b"label,text\nfresh,x\n"))
    with pytest.raises(DataError, match="'category'"):
        read_rt_polarity(path)


def test_trec_takes_the_coarse_label(tmp_path):
    path = tmp_path / "q.txt"
    path.write_text("DESC:manner How did serfdom develop ?\nNUM:date When was it ?\n\n", encoding="utf-8")
    assert read_trec(path) == (["How did serfdom develop ?", "When was it ?"], ["DESC", "NUM"])


def test_trec_malformed_line_names_the_line(tmp_path):
    path = tmp_path / "q.txt"
    path.write_text("DESC:manner How ?\nno label here\n", encoding="utf-8")
    with pytest.raises(DataError, match="line 2"):
        read_trec(path)


def test_sms_spam_maps_flags_to_names(tmp_path):
    path = tmp_path / "sms.csv"
    path.write_text(',spam,text\n0,0,"Ok lar, joking"\n1,1,WIN a prize\n', encoding="utf-8")
    assert read_sms_spam(path) == (["Ok lar, joking", "WIN a prize"], ["ham", "spam"])


def test_sms_spam_missing_text_column(tmp_path):
    path = tmp_path / "sms.csv"
    path.write_text(",spam,message\n0,0,x\n", encoding="utf-8")
    with pytest.raises(DataError, match="'text'"):
        read_sms_spam(path)


def test_movie_sentiment_score_reads_float_scores_with_crlf(tmp_path):
    path = tmp_path / "m.txt"
    path.write_bytes(b"id\tsentiment\ttext\r\n1\t2.25\tThe Rock is destined\r\n2\t-0.6\tToo tepid\r\n")
    texts, scores = read_movie_sentiment_score(path)
    assert texts == ["The Rock is destined", "Too tepid"]
    assert scores == [2.25, -0.6]


def test_movie_sentiment_score_bad_score_names_the_line(tmp_path):
    path = tmp_path / "m.txt"
    path.write_text("id\tsentiment\ttext\n1\tgood\tx\n", encoding="utf-8")
    with pytest.raises(DataError, match="line 2"):
        read_movie_sentiment_score(path)


def test_pang_lee_reads_bom_csv_with_multiline_reviews(tmp_path):
    path = tmp_path / "pl.csv"
    path.write_bytes('"1","a fine film , \nreally ."\n"-1","a ""bad"" one"\n'.encode("utf-8-sig"))
    texts, labels = read_pang_lee_reviews(path)
    assert texts == ["a fine film , \nreally .", 'a "bad" one']
    assert labels == ["positive", "negative"]


def test_pang_lee_wrong_column_count(tmp_path):
    path = tmp_path / "pl.csv"
    path.write_text('"1","x","extra"\n', encoding="utf-8")
    with pytest.raises(DataError, match="row 1"):
        read_pang_lee_reviews(path)


def test_bbc_news_reads_topic_folders_in_sorted_order_and_non_utf8(tmp_path):
    (tmp_path / "tech").mkdir()
    (tmp_path / "business").mkdir()
    (tmp_path / "tech" / "001.txt").write_bytes(b"Chips\n\nFaster chips.")
    (tmp_path / "business" / "002.txt").write_bytes(b"Profit \xa3 up")  # latin-1 pound sign
    (tmp_path / "business" / "001.txt").write_bytes(b"Shares")
    texts, labels = read_bbc_news(tmp_path)
    assert labels == ["business", "business", "tech"]
    assert texts == ["Shares", "Profit \u00a3 up", "Chips\n\nFaster chips."]


def test_bbc_news_empty_folder(tmp_path):
    with pytest.raises(DataError, match="sub-folder"):
        read_bbc_news(tmp_path)
