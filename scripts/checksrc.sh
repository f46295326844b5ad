#!/bin/bash
# Source checker (issue 15): the habits a compiler does not enforce, over every C file under src/
# and include/ (the shipped code; tests/ drive their own arguments and are not checked):
#   banned      strcpy, strcat, strncat, sprintf, vsprintf, gets, strtok, atoi, atol, atoll, atof,
#               sscanf (snprintf and the kw_* helpers instead; kw_parse_u64 for numbers);
#   strtoul     strtol/strtoul/strtoll/strtoull/strtoimax/strtoumax/strtod without an end pointer,
#               or without errno set to 0 in the 3 lines before the call (so overflow is seen);
#   assign      an assignment inside an if/while condition, also one written over several lines
#               (write it on its own line);
#   length      a file over 600 lines.
# Comments and string literals are not read. A finding is allowed only by a line
# "PATH RULE reason" in scripts/checksrc.allow (the reason is required).
# Usage: scripts/checksrc.sh [FILE...]   (default: the whole tree). Exit 1 on any finding.
set -euo pipefail
cd "$(dirname "$0")/.."
allow=scripts/checksrc.allow
max_lines=600

if [ $# -gt 0 ]; then
    files=("$@")
else
    mapfile -t files < <(git ls-files -co --exclude-standard -- 'src/*.[ch]' 'include/*.[ch]' | sort)
fi

# A line-preserving copy of a C file without comments and string/char literals.
strip() {
    perl -0777 -pe '
        s{/\*.*?\*/}{ my $c = $&; $c =~ s/[^\n]//g; $c }gse;
        s{//[^\n]*}{}g;
        s{"(?:\\.|[^"\\\n])*"}{""}g;
        s{'"'"'(?:\\.|[^'"'"'\\\n])*'"'"'}{0}g;
    ' "$1"
}

allowed() { # path rule
    [ -f "$allow" ] && grep -Eq "^$1[[:space:]]+$2[[:space:]]+[^[:space:]]" "$allow"
}

found=0
report() { # path line rule text
    if allowed "$1" "$3"; then
        return
    fi
    echo "$1:$2: [$3] $4"
    found=$((found + 1))
}

for f in "${files[@]}"; do
    [ -f "$f" ] || continue
    n=$(wc -l < "$f")
    if [ "$n" -gt "$max_lines" ]; then
        report "$f" "$n" length "$n lines (at most $max_lines: split it by purpose)"
    fi
    while IFS=: read -r line rule text; do
        report "$f" "$line" "$rule" "$text"
    done < <(strip "$f" | perl -ne '
        BEGIN { @prev = (); }
        my $l = $_;
        chomp $l;
        if ($l =~ /\b(strcpy|strcat|strncat|sprintf|vsprintf|gets|strtok|atoi|atol|atoll|atof|sscanf)\s*\(/) {
            print "$.:banned:$1() (use snprintf, kw_parse_u64 or a bounded copy)\n";
        }
        if ($l =~ /\b(strto(?:u?ll?|u?imax|d|f|ld))\s*\(/) {
            my $fn = $1;
            if ($l =~ /\bstrto\w+\s*\([^,]*,\s*NULL\b/) {
                print "$.:strtoul:$fn() without an end pointer (use kw_parse_u64)\n";
            } elsif (!grep { /\berrno\s*=\s*0\b/ } (@prev, $l)) {
                print "$.:strtoul:$fn() without errno = 0 before it (use kw_parse_u64)\n";
            }
        }
        push @prev, $l;
        shift @prev if @prev > 3;
    ')
    # Conditions over any number of lines: the balanced parentheses after if/while.
    while IFS=: read -r line rule text; do
        report "$f" "$line" "$rule" "$text"
    done < <(strip "$f" | perl -0777 -ne '
        while (/\b(?:if|while)\s*(\((?:[^()]++|(?1))*\))/g) {
            my ($cond, $at) = ($1, $-[0]);
            $cond =~ s/[=!<>+\-*\/%&|^]=|==//g;
            next unless $cond =~ /[^=]=[^=]/;
            my $line = 1 + (substr($_, 0, $at) =~ tr/\n//);
            print "$line:assign:assignment in a condition\n";
        }
    ')
done

if [ "$found" -gt 0 ]; then
    echo "checksrc: $found finding(s); fix them or allow one in $allow with a reason" >&2
    exit 1
fi
echo "checksrc: ${#files[@]} files clean"
