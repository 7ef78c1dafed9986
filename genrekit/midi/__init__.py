"""MIDI synthesis: cutting windows out of MIDI files (`cutting`), rendering them with FluidSynth (`render`),
and the instrumental / a-cappella versions of songs (`versions`)."""
