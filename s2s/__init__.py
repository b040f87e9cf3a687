"""s2s: LSTM + attention neural machine translation.

Layers, each importing only those below it (tests/test_layers.py checks):

    s2s.training    trainer, run folder, data, validation, schedule, distributed, averaging
    s2s.inference   step interface, search, beam, shortlist, batching, model files, Translator
    s2s.model       encoder, attention, decoder, output layer, loss
    s2s.*           constants, config, tokenizer, checkpoint, devices, scoring, torch_compat
"""
