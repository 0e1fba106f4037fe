"""The "Why convolutions?" training lab: four Fashion-MNIST nets one idea apart, their parameter counts,
training with live curves, first-layer filters, shift tests and a fully convolutional class map.

Modules: :mod:`~vizlib.training_lab.data` (Fashion-MNIST), :mod:`~vizlib.training_lab.nets` (the four nets),
:mod:`~vizlib.training_lab.params` (parameter formulas), :mod:`~vizlib.training_lab.train` (training, reference
runs), :mod:`~vizlib.training_lab.shift` (robustness to shifts and rotations), :mod:`~vizlib.training_lab.fcn`
(class maps on a canvas), :mod:`~vizlib.training_lab.registry` (the nets in :mod:`vizlib.models`),
figures in :mod:`vizlib.figures.training_lab` (plotly figures and downloads).
"""
