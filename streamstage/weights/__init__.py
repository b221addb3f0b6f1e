"""The model shipped with streamstage (default.pt, see MODEL_CARD.md)."""
