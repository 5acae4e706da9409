"""Load mecheval checkpoints into the PyTorch module tree of state-dict.md with strict=True, and run them.

Called by tests/models/pytorch.test.ts as
    /usr/bin/python3 tests/models/torch_check.py '<json: [{"path", "ids": [[...]], "hidden": [...]}]>'
For each checkpoint it prints one JSON line: the strict-load outcome, the module tree's state-dict keys in order, and
the largest difference between the PyTorch hidden states (after ln_f) and the ones TensorFlow.js computed.
The module tree is the PyTorch twin of bench/torch_twin.py, whose modules carry the zoology / tinylang names.
"""
import json
import os
import struct
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'bench'))
from torch_twin import LanguageModel  # noqa: E402


def read_safetensors(path):
    with open(path, 'rb') as f:
        raw = f.read()
    (n,) = struct.unpack('<Q', raw[:8])
    header = json.loads(raw[8:8 + n])
    meta = header.pop('__metadata__', {})
    base = 8 + n
    tensors = {}
    for name, e in header.items():
        assert e['dtype'] == 'F32', f'{name}: dtype {e["dtype"]}'
        b, end = e['data_offsets']
        tensors[name] = torch.frombuffer(bytearray(raw[base + b:base + end]), dtype=torch.float32).reshape(e['shape'])
    return tensors, meta


def main():
    for job in json.loads(sys.argv[1]):
        tensors, meta = read_safetensors(job['path'])
        cfg = json.loads(meta['config'])
        torch.manual_seed(0)
        model = LanguageModel(cfg)
        out = {'path': job['path'], 'mixer': cfg['mixer'], 'keys': list(model.state_dict().keys())}
        try:
            model.load_state_dict(tensors, strict=True)
            out['loaded'] = True
        except RuntimeError as e:
            out['loaded'] = False
            out['error'] = str(e)
            print(json.dumps(out), flush=True)
            continue
        with torch.no_grad():
            h = model.hidden(torch.tensor(job['ids'], dtype=torch.long)).flatten()
        want = torch.tensor(job['hidden'], dtype=torch.float32)
        out['max_diff'] = float((h - want).abs().max())
        out['max_abs'] = float(want.abs().max())
        print(json.dumps(out), flush=True)


if __name__ == '__main__':
    main()
