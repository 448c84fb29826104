"""Decoding and measuring the video itself: probing, frames, shots, bars, image quality, frame filtering."""
