"""Classification: attention pooling over tokens (texts) and over image patches or CNN feature grids."""
