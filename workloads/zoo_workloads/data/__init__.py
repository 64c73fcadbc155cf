"""Datasets of the zoo: ImageNet/RP2K ImageFolder trees, UCF101/HMDB51 frame folders, and tiny test sets.

`layouts`, `video`, `sampling` and `synth` are pure Python (plus Pillow/numpy); `pipeline` builds the MindSpore
dataset pipelines and is the only module here that imports MindSpore.
"""
