"""The Dw stage: the water-equivalent diameter (AAPM 220) of sampled CT axial images."""
