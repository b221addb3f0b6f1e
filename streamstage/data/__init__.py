"""The bundled sample recording used by ``streamstage demo`` (see its NOTICE file)."""
