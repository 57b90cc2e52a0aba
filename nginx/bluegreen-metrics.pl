#!/usr/bin/perl
# Per-color traffic figures of the blue-green router, in the Prometheus text format.
#
#   perl bluegreen-metrics.pl UDP_PORT HTTP_PORT STATE_DIR BUCKETS MASTER_PID
#
# nginx sends one syslog line per request to 127.0.0.1:UDP_PORT (access_log syslog:, see
# http.conf.tmpl); this process counts them and answers GET /metrics on 127.0.0.1:HTTP_PORT,
# which nginx proxies from /_bluegreen/metrics on the preview and probe servers. Both ports are
# on the container's loopback: nothing here is reachable from outside the container. It exits
# when MASTER_PID (nginx's master) is gone. router.sh starts and supervises it.
#
# Why perl and UDP: the router image is the official nginx image, which has perl-base (Debian
# marks it essential) and no other language; UDP because a log line sent to a dead or slow
# exporter is dropped by the kernel and never blocks an nginx worker. Counters live in this
# process: they start at 0 when it starts (Prometheus treats that as a counter reset), and
# bluegreen_metrics_dropped_total says how many lines the kernel dropped because this process
# fell behind.
#
# Only perl-base modules (the image has no others).
use strict;
use warnings;
use IO::Select;
use IO::Socket::INET;
use Socket qw(SOL_SOCKET SO_RCVBUF);

my ($udp_port, $http_port, $state_dir, $bucket_list, $master) = @ARGV;
die "usage: $0 UDP_PORT HTTP_PORT STATE_DIR BUCKETS MASTER_PID\n"
    unless defined $master && $udp_port =~ /^\d+$/ && $http_port =~ /^\d+$/ && $master =~ /^\d+$/;
my @buckets = split /,/, $bucket_list;

my $udp = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => $udp_port, Proto => 'udp')
    or die "bluegreen-metrics: cannot listen on udp 127.0.0.1:$udp_port: $!\n";
# Room for a burst of lines while a scrape is being answered; the kernel caps it (rmem_max).
setsockopt($udp, SOL_SOCKET, SO_RCVBUF, 4 * 1024 * 1024);
my $http = IO::Socket::INET->new(
    LocalAddr => '127.0.0.1', LocalPort => $http_port, Proto => 'tcp', Listen => 16, ReuseAddr => 1,
) or die "bluegreen-metrics: cannot listen on tcp 127.0.0.1:$http_port: $!\n";

my $started = time;
my %requests;    # "route\0color\0class" => count
my %series;      # "route\0color" => { buckets => [...], sum => s, count => n }

sub record {
    my ($line) = @_;
    # "<190>Dec  2 14:00:00 bluegreen: v1 live green 200 0.004 172.18.0.5:9000"; the upstream
    # address is "-" when nginx answered itself (rate limit, maintenance page, no color tried).
    return unless $line =~ /: v1 (live|preview) (blue|green) (\d)\d\d ([0-9.]+) (.*)$/;
    my ($route, $color, $class, $seconds, $upstream) = ($1, $2, $3, $4, $5);
    $color = 'none' if $upstream =~ /^-?\s*$/;
    $requests{"$route\0$color\0${class}xx"}++;
    my $s = $series{"$route\0$color"} //= { buckets => [ (0) x @buckets ], sum => 0, count => 0 };
    for my $i (0 .. $#buckets) {
        $s->{buckets}[$i]++ if $seconds <= $buckets[$i];
    }
    $s->{sum} += $seconds;
    $s->{count}++;
}

sub dropped {
    # The kernel's count of datagrams it dropped for our socket: the last column of its line
    # in /proc/net/udp, found by the local port (hex).
    my $port = sprintf '%04X', $udp_port;
    open my $fh, '<', '/proc/net/udp' or return 0;
    while (my $line = <$fh>) {
        my @f = split ' ', $line;
        return $f[-1] if @f > 12 && $f[1] eq "0100007F:$port";
    }
    return 0;
}

sub exposition {
    my @out;
    push @out, '# HELP bluegreen_requests_total Requests the router answered, by route, the color that served them (none: the router answered itself) and status class.';
    push @out, '# TYPE bluegreen_requests_total counter';
    for my $key (sort keys %requests) {
        my ($route, $color, $class) = split /\0/, $key;
        push @out, qq(bluegreen_requests_total{route="$route",color="$color",code="$class"} $requests{$key});
    }
    push @out, '# HELP bluegreen_request_duration_seconds Time to answer a request (nginx $request_time), by route and serving color.';
    push @out, '# TYPE bluegreen_request_duration_seconds histogram';
    for my $key (sort keys %series) {
        my ($route, $color) = split /\0/, $key;
        my $s = $series{$key};
        my $labels = qq(route="$route",color="$color");
        for my $i (0 .. $#buckets) {
            push @out, qq(bluegreen_request_duration_seconds_bucket{$labels,le="$buckets[$i]"} $s->{buckets}[$i]);
        }
        push @out, qq(bluegreen_request_duration_seconds_bucket{$labels,le="+Inf"} $s->{count});
        push @out, sprintf('bluegreen_request_duration_seconds_sum{%s} %.3f', $labels, $s->{sum});
        push @out, qq(bluegreen_request_duration_seconds_count{$labels} $s->{count});
    }
    push @out, '# HELP bluegreen_route_color 1 for the color each route sends requests to now.';
    push @out, '# TYPE bluegreen_route_color gauge';
    for my $route ('live', 'preview') {
        my $green = -f "$state_dir/$route-green" ? 1 : 0;
        push @out, qq(bluegreen_route_color{route="$route",color="blue"} ) . (1 - $green);
        push @out, qq(bluegreen_route_color{route="$route",color="green"} $green);
    }
    push @out, '# HELP bluegreen_maintenance 1 while the storefront answers the maintenance page.';
    push @out, '# TYPE bluegreen_maintenance gauge';
    push @out, 'bluegreen_maintenance ' . (-f "$state_dir/maintenance" ? 1 : 0);
    push @out, '# HELP bluegreen_metrics_dropped_total Log lines the kernel dropped before this exporter read them.';
    push @out, '# TYPE bluegreen_metrics_dropped_total counter';
    push @out, 'bluegreen_metrics_dropped_total ' . dropped();
    push @out, '# HELP bluegreen_metrics_start_time_seconds When the counters above started from 0.';
    push @out, '# TYPE bluegreen_metrics_start_time_seconds gauge';
    push @out, "bluegreen_metrics_start_time_seconds $started";
    return join("\n", @out) . "\n";
}

sub serve {
    my ($client) = @_;
    return unless $client;
    # Only nginx on the same loopback connects; a client that sends nothing for 2 s is dropped
    # so it cannot hold up the counting.
    my $request = '';
    my $wait = IO::Select->new($client);
    while ($request !~ /\r?\n\r?\n/ && length($request) < 8192) {
        last unless $wait->can_read(2);
        my $got = sysread($client, $request, 4096, length $request);
        last unless $got;
    }
    my ($method, $path) = $request =~ m{^(\S+) (\S+)};
    my ($status, $body) = (404, "not found\n");
    if (defined $path && $method eq 'GET' && $path =~ m{^/metrics(\?.*)?$}) {
        ($status, $body) = (200, exposition());
    }
    my $reason = $status == 200 ? 'OK' : 'Not Found';
    print {$client} "HTTP/1.1 $status $reason\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
        . 'Content-Length: ' . length($body) . "\r\nConnection: close\r\n\r\n$body";
    close $client;
}

my $ready = IO::Select->new($udp, $http);
while (kill 0, $master) {
    for my $handle ($ready->can_read(1)) {
        if ($handle == $udp) {
            # Drain what is queued before looking at the listener again.
            $udp->blocking(0);
            my $line;
            while (defined $udp->recv($line, 65535) && length $line) {
                record($line);
            }
            $udp->blocking(1);
        } else {
            serve($http->accept);
        }
    }
}
