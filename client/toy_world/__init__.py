"""The toy world: a synthetic captioned data set of coloured shapes (:mod:`.data`), a pixel
judge of colour and shape (:mod:`.judge`), and a tiny Stable-Diffusion-shaped pipeline trained
on it (:mod:`.pipeline`, :mod:`.build`) whose images follow their captions. Tests, the README's
end-to-end example and ``bench/toy_quality.py`` share it; ``hub dev toy-world OUT`` writes it.
"""
