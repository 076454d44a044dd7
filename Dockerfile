# Tally in a container: built with the Rust toolchain, run from a small Debian image as a user
# without privileges.
#
#   docker build -t tally .
#   docker run -p 8080:8080 -v tally-data:/var/lib/tally tally
#
# Without TALLY_DATABASE_URL it keeps a SQLite file in the volume /var/lib/tally.

FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --create-home --home-dir /var/lib/tally tally
COPY --from=build /src/target/release/tally /usr/local/bin/tally
USER tally
WORKDIR /var/lib/tally
ENV TALLY_BIND=0.0.0.0:8080 \
    TALLY_DATABASE_URL=sqlite:///var/lib/tally/tally.db?mode=rwc
EXPOSE 8080
VOLUME /var/lib/tally
ENTRYPOINT ["tally"]
CMD ["serve"]
