"""Training of the level classifier on 3D anatomical cues."""
