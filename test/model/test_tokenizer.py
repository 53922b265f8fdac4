"""PromptTokenizer over a tiny sentencepiece model trained offline."""

from __future__ import annotations

import numpy as np
import pytest
import sentencepiece as spm

from restac_ros.model.tokenizer import PromptTokenizer

CORPUS = ["pick up the red block", "place the cup on the plate", "open the drawer slowly",
          "insert the peg into the hole", "wipe the table", "Task: State: Action:",
          "0 1 2 3 4 5 6 7 8 9 10 100 127 128 200 255"]


@pytest.fixture(scope="session")
def sp_model(tmp_path_factory):
    d = tmp_path_factory.mktemp("sp")
    (d / "corpus.txt").write_text("\n".join(CORPUS * 20))
    spm.SentencePieceTrainer.train(input=str(d / "corpus.txt"), model_prefix=str(d / "tok"),
                                   vocab_size=48, model_type="unigram", bos_id=2, eos_id=1,
                                   pad_id=0, unk_id=3, minloglevel=2)
    return d / "tok.model"


def test_tokens_and_mask(sp_model):
    tok = PromptTokenizer(sp_model, max_len=24)
    tokens, mask = tok("pick_up the red block\n")
    assert tokens.dtype == np.int32 and tokens.shape == (24,)
    assert mask.dtype == bool and mask.shape == (24,)
    n = int(mask.sum())
    assert 3 < n < 24 and mask[:n].all() and not mask[n:].any()
    assert tokens[0] == 2 and np.all(tokens[n:] == 0)  # bos first, zero padding
    again, _ = tok("pick up the red block")  # "_" and newlines are cleaned like openpi
    np.testing.assert_array_equal(tokens, again)
    assert tok.vocab_size == 48


def test_truncation_and_pi05_state_prompt(sp_model):
    tok = PromptTokenizer(sp_model, max_len=6)
    tokens, mask = tok("insert the peg into the hole and then wipe the table")
    assert mask.all() and tokens.shape == (6,)
    long = PromptTokenizer(sp_model, max_len=64)
    plain, m1 = long("wipe the table")
    with_state, m2 = long("wipe the table", state=np.float32([-1.0, 0.0, 0.999]))
    assert m2.sum() > m1.sum()
    assert not np.array_equal(plain, with_state)


def test_missing_model_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="sentencepiece model not found"):
        PromptTokenizer(tmp_path / "nope.model", 8)
