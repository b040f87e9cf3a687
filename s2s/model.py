"""Seq2Seq: encoder, bridge to the decoder's initial state, attention decoder, output layer."""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import nn

from s2s.config import ModelConfig
from s2s.data import Batch
from s2s.decoder import Decoder, DecoderState, EncoderOutput, OutputSubset
from s2s.encoder import Encoder
from s2s.loss import fused_output_loss, reference_output_loss
from s2s.tokenizer import PAD_ID


class Bridge(nn.Module):
    """Maps the encoder's final states to the decoder's initial states (learned, tanh)."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.layers = config.dec_layers
        size = config.dec_layers * config.dec_hidden
        self.hidden = nn.Linear(config.enc_hidden, size)
        self.cell = nn.Linear(config.enc_hidden, size) if config.cell == "lstm" else None

    def forward(self, final_hidden: torch.Tensor, final_cell: torch.Tensor | None) -> DecoderState:
        """final_hidden, final_cell: (batch, enc_hidden) -> state of (layers, batch, dec_hidden)."""
        def expand(linear: nn.Linear, state: torch.Tensor) -> torch.Tensor:
            out = torch.tanh(linear(state))
            return out.view(state.size(0), self.layers, -1).transpose(0, 1).contiguous()

        cell = expand(self.cell, final_cell) if self.cell is not None else None
        return DecoderState(expand(self.hidden, final_hidden), cell, None)


class Seq2Seq(nn.Module):
    def __init__(self, config: ModelConfig, src_vocab_size: int, tgt_vocab_size: int):
        super().__init__()
        self.config = config
        self.encoder = Encoder(src_vocab_size, config)
        self.bridge = Bridge(config)
        self.decoder = Decoder(tgt_vocab_size, config)
        self.output = nn.Linear(config.dec_hidden, tgt_vocab_size)
        if config.tie_embeddings:
            self.output.weight = self.decoder.embed.weight

    def encode(self, src: torch.Tensor, src_lens: torch.Tensor) -> tuple[EncoderOutput,
                                                                          DecoderState]:
        """src: (batch, src_len); src_lens: (batch,) -> encoder output, initial decoder state."""
        memory, final_hidden, final_cell = self.encoder(src, src_lens)
        src_mask = src != PAD_ID
        keys = self.decoder.attention.project_keys(memory)
        return EncoderOutput(memory, keys, src_mask), self.bridge(final_hidden, final_cell)

    def decode_step(
        self, prev_tokens: torch.Tensor, encoded: EncoderOutput, state: DecoderState
    ) -> tuple[torch.Tensor, DecoderState, torch.Tensor]:
        """One decoder step. prev_tokens: (batch,) vocabulary ids -> log-probabilities
        (batch, tgt_vocab) (or (batch, C) over ``encoded.output_subset``), new state, attention
        weights (batch, src_len)."""
        attentional, state, weights = self.decoder(prev_tokens.unsqueeze(1), encoded, state)
        attentional = attentional.squeeze(1)
        subset = encoded.output_subset
        if subset is None:
            logits = self.output(attentional).float()
        else:
            logits = subset.logits(attentional).float()
            if encoded.output_mask is not None:
                logits = logits.masked_fill(~encoded.output_mask, float("-inf"))
        return torch.log_softmax(logits, dim=-1), state, weights.squeeze(1)

    def restrict_output(self, encoded: EncoderOutput, ids: torch.Tensor,
                        row_mask: torch.Tensor | None = None) -> EncoderOutput:
        """Let decode_step score only the target ``ids`` (C,), sorted and including the special
        ids (which so keep their positions): its log-probabilities are then (batch, C), over
        positions in ``ids``; row_mask (batch, C) further limits each row."""
        if is_quantized(self.output):
            packed_full = self.output._packed_params._packed_params
            weight, bias = torch.ops.quantized.linear_unpack(packed_full)
            packed = torch.ops.quantized.linear_prepack(weight.index_select(0, ids),
                                                        bias.index_select(0, ids))
            subset = OutputSubset(ids, None, None, packed)
        else:
            weight, bias = self.output.weight.detach(), self.output.bias.detach()
            subset = OutputSubset(ids, weight.index_select(0, ids).to(encoded.memory.dtype),
                                  bias.index_select(0, ids).to(encoded.memory.dtype))
        return replace(encoded, output_subset=subset, output_mask=row_mask)

    def teacher_forced(self, src: torch.Tensor, src_lens: torch.Tensor,
                       tgt_in: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns attentional vectors (batch, tgt_len, dec_hidden) and attention weights
        (batch, tgt_len, src_len) for the target prefix ``tgt_in`` (batch, tgt_len)."""
        encoded, state = self.encode(src, src_lens)
        attentional, _, weights = self.decoder(tgt_in, encoded, state)
        return attentional, weights

    def forward(self, src: torch.Tensor, src_lens: torch.Tensor, tgt_in: torch.Tensor,
                tgt_out: torch.Tensor, smoothing: float = 0.0, fused: bool = True,
                chunk_rows: int = 1024) -> torch.Tensor:
        """Summed label-smoothed cross-entropy over the real (non-pad) tokens of ``tgt_out``.

        src: (batch, src_len); src_lens: (batch,); tgt_in, tgt_out: (batch, tgt_len).
        Logits are computed only for real positions.
        """
        attentional, _ = self.teacher_forced(src, src_lens, tgt_in)
        real = tgt_out != PAD_ID
        hidden, targets = attentional[real], tgt_out[real]
        if fused:
            return fused_output_loss(hidden, self.output.weight, self.output.bias, targets,
                                     smoothing, chunk_rows)
        return reference_output_loss(hidden, self.output.weight, self.output.bias, targets,
                                     smoothing)

    def loss(self, batch: Batch, smoothing: float = 0.0, fused: bool = True,
             chunk_rows: int = 1024) -> torch.Tensor:
        """Summed loss of a Batch (see ``forward``)."""
        return self(batch.src, batch.src_lens, batch.tgt_in, batch.tgt_out, smoothing, fused,
                    chunk_rows)

    def sentence_losses(self, batch: Batch) -> torch.Tensor:
        """Per-sentence summed NLL without smoothing: (batch,), in the batch's row order."""
        attentional, _ = self.teacher_forced(batch.src, batch.src_lens, batch.tgt_in)
        log_probs = torch.log_softmax(self.output(attentional).float(), dim=-1)
        token_nll = -log_probs.gather(2, batch.tgt_out.unsqueeze(2)).squeeze(2)
        return (token_nll * (batch.tgt_out != PAD_ID)).sum(1)


def is_quantized(layer: nn.Module) -> bool:
    """Whether ``layer`` is a torch.ao dynamically quantized Linear (int8 inference)."""
    return hasattr(layer, "_packed_params")


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
