"""Output paths: what is at them must survive, unless it is a file the user named."""

from tests.hostile.corpus import case

CASES = [
    case("a folder", "@file:folder", "output"),
    case("missing folder", "/nonexistent/folder/out.csv", "output"),
    case("a device", "/dev/null", "output", refuse=""),
    case("a symbolic link to a folder", "@file:link-to-folder", "output"),
    case("empty", "", "output"),
]
