"""PixWave: a Pix digital wallet over several payment gateways."""
