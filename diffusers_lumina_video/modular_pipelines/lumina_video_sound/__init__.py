from .modular_blocks_lumina_video_sound import AUDIO_PREFIX, LuminaVideoSoundBlocks, LuminaVideoSoundModularPipeline


__all__ = ["AUDIO_PREFIX", "LuminaVideoSoundBlocks", "LuminaVideoSoundModularPipeline"]
