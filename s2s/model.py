"""Seq2Seq: encoder, bridge to the decoder's initial state, attention decoder, output layer."""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import nn

from s2s.config import ModelConfig
from s2s.data import Batch
from s2s.decoder import Decoder, DecoderState, EncoderOutput, OutputSubset, OwnOutput
from s2s.encoder import Encoder
from s2s.loss import fused_output_loss, reference_output_loss
from s2s.shortlist import Restriction
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

    def encode_for_steps(self, src: torch.Tensor, src_lens: torch.Tensor
                         ) -> tuple[EncoderOutput, DecoderState]:
        """encode() for decode_step: the memory comes projected (Decoder.project_memory)."""
        encoded, state = self.encode(src, src_lens)
        return self.decoder.project_memory(encoded), state

    def decode_step(
        self, prev_tokens: torch.Tensor, encoded: EncoderOutput, state: DecoderState
    ) -> tuple[torch.Tensor, DecoderState, torch.Tensor]:
        """One decoder step. prev_tokens: (rows,) vocabulary ids -> log-probabilities
        (rows, tgt_vocab) (or (rows, C) over the output space that ``restrict_output`` set:
        the shared ids, then the sentence's own), new state, attention weights (rows, src_len).
        """
        attentional, state, weights = self.decoder(prev_tokens.unsqueeze(1), encoded, state)
        attentional = attentional.squeeze(1)
        subset, own = encoded.output_subset, encoded.own_output
        if subset is None:
            logits = self.output(attentional).float()
        else:
            logits = subset.logits(attentional).float()
            if own is not None and own.valid.size(1):
                grouped = attentional.view(encoded.memory.size(0), -1, attentional.size(-1))
                mine = own.logits(grouped.to(own.dtype)).view(logits.size(0), -1)
                logits = torch.cat([logits, mine.float()], dim=1)
        return torch.log_softmax(logits, dim=-1), state, weights.squeeze(1)

    def restrict_output(self, encoded: EncoderOutput, restriction: Restriction
                        ) -> EncoderOutput:
        """Let decode_step score only the ids of ``restriction`` (see s2s.shortlist): its
        log-probabilities are then over each sentence's output space, the shared ids (whose
        special ids keep their positions) and then the sentence's own."""
        shared, dtype = restriction.shared, encoded.memory.dtype
        if is_quantized(self.output):
            qweight, bias, weight = self._quantized_output_rows()
            packed = torch.ops.quantized.linear_prepack(qweight.index_select(0, shared),
                                                        bias.index_select(0, shared))
            subset = OutputSubset(shared, None, None, packed)
        else:
            weight, bias = self.output.weight.detach(), self.output.bias.detach()
            subset = OutputSubset(shared, weight.index_select(0, shared).to(dtype),
                                  bias.index_select(0, shared).to(dtype))
        own = None
        if restriction.own.size(1):
            batch = restriction.own.size(0)
            table = torch.cat([shared.expand(batch, -1), restriction.own], dim=1)
            own = OwnOutput(table, restriction.own, restriction.own_valid, weight, bias, dtype)
        return replace(encoded, output_subset=subset, own_output=own)

    def _quantized_output_rows(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The int8 output layer's quantized weight (V, dec_hidden), bias (V,) and dequantized
        weight, unpacked once per layer (unpacking costs as much as several decoder steps)."""
        packed = self.output._packed_params._packed_params
        cached = self.__dict__.get("_unpacked_output")
        if cached is None or cached[0] is not packed:
            qweight, bias = torch.ops.quantized.linear_unpack(packed)
            cached = (packed, qweight, bias, qweight.dequantize())
            self.__dict__["_unpacked_output"] = cached
        return cached[1], cached[2], cached[3]

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
