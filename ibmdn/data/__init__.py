"""Data: image I/O (:mod:`.io`), MATLAB-exact bicubic (:mod:`.imresize`), benchmark and training sets
(:mod:`.datasets`), dataset downloads (:mod:`.download`)."""
