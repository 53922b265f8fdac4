"""Prompt tokenisation with sentencepiece (PaliGemma's tokenizer in deployments).

pi0: "<bos>prompt\n"; pi0.5 (state given): the state, discretised into 256 bins
over [-1, 1], is written into the prompt: "Task: ..., State: ...;\nAction: ".
Output is padded/truncated to `max_len` with a validity mask.
"""

from __future__ import annotations

import logging
import pathlib

import numpy as np
import sentencepiece

logger = logging.getLogger(__name__)


class PromptTokenizer:
    def __init__(self, model_path: str | pathlib.Path, max_len: int):
        path = pathlib.Path(model_path)
        if not path.is_file():
            raise FileNotFoundError(f"sentencepiece model not found: {path}")
        self.model_path = path
        self.max_len = max_len
        self._sp = sentencepiece.SentencePieceProcessor(model_file=str(path))

    @property
    def vocab_size(self) -> int:
        return self._sp.get_piece_size()

    def tokenize(self, prompt: str, state: np.ndarray | None = None):
        """-> (tokens int32 [max_len], mask bool [max_len]). `state`: normalised [D] (pi0.5)."""
        text = prompt.strip().replace("_", " ").replace("\n", " ")
        if state is None:
            tokens = self._sp.encode(text, add_bos=True) + self._sp.encode("\n")
        else:
            bins = np.digitize(np.asarray(state), np.linspace(-1, 1, 257)[:-1]) - 1
            state_str = " ".join(str(int(b)) for b in bins)
            full = f"Task: {text}, State: {state_str};\nAction: "
            tokens = self._sp.encode(full, add_bos=True)
        if len(tokens) > self.max_len:
            logger.warning("prompt has %d tokens, truncating to %d", len(tokens), self.max_len)
            tokens = tokens[: self.max_len]
        n = len(tokens)
        out = np.zeros(self.max_len, np.int32)
        out[:n] = tokens
        mask = np.zeros(self.max_len, bool)
        mask[:n] = True
        return out, mask

    def __call__(self, prompt: str, state: np.ndarray | None = None):
        return self.tokenize(prompt, state)
