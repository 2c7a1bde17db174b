#!/usr/bin/env bash
# Fetches the files GraphiQL runs on (its UMD bundle and stylesheet, React and ReactDOM) from
# the npm registry into api/assets/graphiql/, with their licences. The versions are pinned and
# each package's tarball is checked against its SHA-512 before anything is taken from it, so a
# run reproduces the committed files byte for byte. The API embeds them in the binary: GraphiQL
# works without internet access. To upgrade, change a version and its digest (the `integrity`
# field of `npm view <package>@<version> dist`, as hex), run this script and commit the result.
set -euo pipefail
cd "$(dirname "$0")/.."

out=api/assets/graphiql
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# name version sha512-of-the-tarball
packages=(
    "graphiql 3.9.0 ac96059477416ee83df986c54b0455be07cf8c26b20bbc0779c664c7fa81e172ee40f150670ff207da661c5b4e255e9188d0411eba37bb519da1c29add870644"
    "react 18.3.1 c12fa1020252851d0a844bcf240adfb8f54dd7e1f3d6dd18ea7e632eb1906e46f8bab80f13fd11bdefb590c075bffa16807826e1621c57e8bb176a53563fb689"
    "react-dom 18.3.1 e66e2740aa7ead945bd3d2cd1f9f463380714e1f76e75ff295b2886e97bb4e91b17c9fbd92fe812e42c15c88e3b296e06e720136a948db7b519d3593d2c9d423"
)

for package in "${packages[@]}"; do
    read -r name version digest <<<"$package"
    tarball="$work/$name-$version.tgz"
    curl --fail --silent --show-error --location \
        "https://registry.npmjs.org/$name/-/$name-$version.tgz" --output "$tarball"
    echo "$digest  $tarball" | sha512sum --check --quiet
    mkdir -p "$work/$name"
    tar --extract --gzip --file "$tarball" --directory "$work/$name"
done

mkdir -p "$out"
cp "$work/graphiql/package/graphiql.min.js" "$out/graphiql.min.js"
cp "$work/graphiql/package/graphiql.min.css" "$out/graphiql.min.css"
cp "$work/graphiql/package/LICENSE" "$out/LICENSE-graphiql"
cp "$work/react/package/umd/react.production.min.js" "$out/react.production.min.js"
cp "$work/react/package/LICENSE" "$out/LICENSE-react"
cp "$work/react-dom/package/umd/react-dom.production.min.js" "$out/react-dom.production.min.js"
cp "$work/react-dom/package/LICENSE" "$out/LICENSE-react-dom"
echo "GraphiQL's files are in $out"
