"""Peer: a plain PyTorch + transformers fine-tuning loop, as a practitioner writes it by hand.

The same base model, mean pooling and linear head, AdamW, batches of the same rows padded by the
tokenizer; no evaluation, no checkpoint. Returns the seconds its training steps took.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
import torch
from transformers import AutoModel, AutoTokenizer


def plain_loop(
    location: str,
    texts: Sequence[str],
    labels: Sequence[int],
    *,
    n_labels: int,
    steps: int,
    batch_size: int,
    max_tokens: int,
    seed: int = 0,
) -> float:
    torch.manual_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(location, local_files_only=True)
    body = AutoModel.from_pretrained(location, local_files_only=True, attn_implementation="eager")
    head = torch.nn.Linear(body.config.hidden_size, n_labels)
    optimizer = torch.optim.AdamW([*body.parameters(), *head.parameters()], lr=5e-5)
    order = np.random.default_rng(seed).permutation(len(texts))
    target = torch.tensor(labels)
    body.train()
    started = time.perf_counter()
    for step in range(steps):
        rows = order[(step * batch_size) % len(texts) :][:batch_size].tolist()
        batch = tokenizer(
            [texts[i] for i in rows],
            padding=True,
            truncation=True,
            max_length=max_tokens,
            return_tensors="pt",
        )
        hidden = body(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).float()
        logits = head((hidden * mask).sum(1) / mask.sum(1))
        loss = torch.nn.functional.cross_entropy(logits, target[rows])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return time.perf_counter() - started
