"""What is written from results files: :mod:`.report` (Markdown/HTML tables laid out like the paper's),
:mod:`.leaderboard` (a static site), :mod:`.plots` (figures from the raw data), :mod:`.costs` (memory and
computation tables) and :mod:`.markdown` (table-cell escaping shared by them)."""
