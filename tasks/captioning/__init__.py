"""Captioning: Show, Attend and Tell over CNN feature grids; formula images → LaTeX markup."""
