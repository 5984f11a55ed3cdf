"""Output paths: what is at them must survive, unless it is a file the user named."""

from tests.hostile.corpus import case

CASES = [
    case("a folder", "@file:folder", "output"),
    case("missing folder", "/nonexistent/folder/out.csv", "output"),
    case("a device", "/dev/null", "output", refuse=""),
    case("a symbolic link to a folder", "@file:link-to-folder", "output"),
    case("empty", "", "output"),
    # a folder to write files into (Open SDG data)
    case("a file where a folder is named", "@file:text", "outdir"),
    case("a folder in a missing folder", "/nonexistent/folder/open-sdg", "outdir"),
    case("a device for a folder", "/dev/null", "outdir"),
    case("no folder", "", "outdir"),
    case("nul in a folder path", "open\x00sdg", "outdir"),
    case("a 5000-character folder path", "/tmp/" + "d" * 5000, "outdir"),
    case("an existing folder", "@file:folder", "outdir", refuse="", accept="outdir"),
]
