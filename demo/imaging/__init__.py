"""Pictures in, the 28×28 a model sees out: bounded decoding, the decode budget, the preparation
recipes and the photo analysis. Imports settings and contract only."""
