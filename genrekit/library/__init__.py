"""Tagging a whole music library: every audio file under a folder gets its genre, kept in a SQLite table.

The table (`tracks`) has one row per file, keyed by its absolute path, with the file's size, modification
time and SHA-1, the model that classified it, the top genre, the probabilities (JSON) and the error text
(NULL when the file was fine). Each finished file is committed at once from the main process (WAL mode), so
a run that is killed loses at most the files in flight, and the next run continues: a file whose path,
size, modification time and model match its row is skipped; a file whose content (SHA-1) is already in the
table for the same model (a copy, a moved or renamed file, a touched one) reuses that result. Rows of files
that are gone from the folder are removed when a run completes. A path that is not valid UTF-8 (Latin-1
names of old collections) is kept as its bytes (a BLOB), every other one as text.

Genre tags are written into the files only when asked (`write_tags=True`): on a copy beside the file, with
mutagen, and the copy replaces the original only when it still decodes to the same number of frames. Copies
left by a killed run are never taken for tracks and are removed by the next run. Links to files outside
the folder and files with several hard links are left untagged (the copy would replace only one name).
"""

from .database import EXPORT_FORMATS, check_export_target, export_library
from .tagging import CRASH_REASON, ClassifyFiles, Classified, LibrarySummary, classify, model_id, tag_library
from .tags import GENRE_NAMES, TagError, display_genre, existing_genres, restore_tags, write_genre_tag

__all__ = ["CRASH_REASON", "EXPORT_FORMATS", "GENRE_NAMES", "ClassifyFiles", "Classified", "LibrarySummary", "TagError",
           "check_export_target", "classify", "display_genre", "existing_genres", "export_library", "model_id",
           "restore_tags", "tag_library", "write_genre_tag"]
