"""Score to files: LilyPond source and PDF, MusicXML, MIDI."""
