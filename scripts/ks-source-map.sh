#!/bin/sh
# Prints docs/keyserver.md's source map from the tree: one row per file of src/keyserver, folder by
# folder (top layer first), with the first sentence of the file's opening comment.
#   scripts/ks-source-map.sh > /tmp/map.md   (then paste it under "## Source map")
set -eu
cd "$(dirname "$0")/../src/keyserver"
echo "| file | purpose |"
echo "|---|---|"
for dir in . net engine fleet peer ops keystore keystore/pem keystore/pkcs11 config obs; do
    for f in "$dir"/*.c "$dir"/*.h; do
        [ -f "$f" ] || continue
        f=${f#./}
        # the opening comment's text up to its first ". " or "*/", on one line
        purpose=$(awk 'NR==1 && !/^\/\*/ {exit} {print} /\*\// {exit}' "$f" |
            sed -e 's|^/\*||' -e 's|\*/.*||' -e 's|^ *\* \{0,1\}||' | tr '\n' ' ' |
            sed -e 's/  */ /g' -e 's/^ //' -e 's/\([.:]\) [A-Z(].*/\1/' -e 's/|/\\|/g')
        echo "| \`$f\` | $purpose |"
    done
done
