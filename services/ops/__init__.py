"""Operations: the lag exporter, ``aiguillage status`` and ``aiguillage dlq``."""
