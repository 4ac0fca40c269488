#!/usr/bin/perl
# organizeOutputBy=Patient (IG 3.0.0): files of patient blocks at system, Patient and Group
# level, with _since, _typeFilter, _elements and `patient`; a block spanning files under a
# small file limit; the manifest's shape; every resource exactly once, the same set as the
# type-organized export of the same request.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use JSON::PP;
use FhirBulk::Test;

my $t = FhirBulk::Test->new;
$t->start_pg;
$t->synth(24, '--seed', 43);
$t->write_conf(FhirBulk::Test::default_http_conf())->start_nginx;
$t->start_worker('--block-unit-patients', 5, '--threads', 2);

sub run_export {
    my ($path, %opt) = @_;
    my $res = $t->kickoff($path, %opt);
    is($res->{status}, 202, "kick-off $path") or diag($res->{content});
    $res = $t->poll($res->{headers}{'content-location'}, 120);
    is($res->{status}, 200, "$path completes") or diag($res->{content});
    return $res->{json};
}

sub key_of {
    my ($r) = @_;
    return "$r->{resourceType}/$r->{id}";
}

# The keys of a type-organized export.
sub plain_keys {
    my ($m) = @_;
    my $d = $t->download_keys($m->{output});
    ok(!@{ $d->{errors} }, 'type-organized files are sound') or diag(join("\n", @{ $d->{errors} }));
    return $d->{keys};
}

# Downloads an organized export and checks its structure; returns { keys, errors, spans }.
sub organized {
    my ($m) = @_;
    my @errors;
    push @errors, 'outputOrganizedBy is not Patient' unless ($m->{outputOrganizedBy} // '') eq 'Patient';
    my (%keys, %first_header, %last_header, %files_of_patient);
    my ($spans, $max_lines) = (0, 0);
    for my $item (@{ $m->{output} }) {
        push @errors, "$item->{url} has a type" if exists $item->{type};
        my $res = $t->request('GET', $item->{url});
        if ($res->{status} != 200) { push @errors, "GET $item->{url}: $res->{status}"; next; }
        my @lines = map { decode_json($_) } split /\n/, $res->{content};
        $max_lines = @lines if @lines > $max_lines;
        my $blocks = @lines && $lines[0]{resourceType} eq 'Parameters';
        my ($patient, $since_header, $resources) = (undef, 0, 0);
        for my $r (@lines) {
            if ($r->{resourceType} eq 'Parameters') {
                my $p = $r->{parameter};
                my $ref = (ref $p eq 'ARRAY' && @$p == 1 && $p->[0]{name} eq 'header')
                    ? $p->[0]{valueReference}{reference} : undef;
                if (!$blocks || !defined $ref || $ref !~ m{^Patient/(.+)$}) {
                    push @errors, "$item->{url}: a Parameters line that is no header";
                    next;
                }
                $patient = $1;
                $first_header{ $item->{url} } //= $patient;
                $last_header{ $item->{url} } = $patient;
                push @errors, "$item->{url}: Patient/$patient twice in a file"
                    if $files_of_patient{$patient}{ $item->{url} }++;
                $since_header = 0;
                next;
            }
            $resources++;
            $keys{ key_of($r) }++;
            if ($blocks) {
                if ($r->{resourceType} eq 'Patient') {
                    push @errors, "$item->{url}: Patient/$r->{id} in the block of $patient"
                        if $r->{id} ne $patient;
                    push @errors, "$item->{url}: Patient/$r->{id} not first" if $since_header;
                } elsif (index(encode_json($r), "\"Patient/$patient\"") < 0) {
                    push @errors, "$item->{url}: " . key_of($r) . " does not reference Patient/$patient";
                }
            }
            $since_header++;
        }
        push @errors, "$item->{url}: $resources resources, count $item->{count}"
            if $resources != $item->{count};
        if (my $next = $item->{continuesInFile}) {
            $spans++;
            $t->{continues}{$next} = $last_header{ $item->{url} };
        }
    }
    for my $next (keys %{ $t->{continues} || {} }) {
        push @errors, "$next does not start with the block it continues"
            unless ($first_header{$next} // '') eq $t->{continues}{$next};
    }
    delete $t->{continues};
    # A patient in several files only along continuesInFile links.
    for my $p (keys %files_of_patient) {
        my $n = keys %{ $files_of_patient{$p} };
        push @errors, "Patient/$p split over $n files without continuesInFile" if $n > 1 && !$spans;
    }
    push @errors, grep { defined } map { $keys{$_} > 1 ? "$_ $keys{$_} times" : undef } keys %keys;
    return { keys => \%keys, errors => \@errors, spans => $spans, max_lines => $max_lines };
}

sub same_as_plain {
    my ($name, $path, %opt) = @_;
    my $sep = $path =~ /\?/ ? '&' : '?';
    my $o = organized(run_export("$path${sep}organizeOutputBy=Patient", %opt));
    ok(!@{ $o->{errors} }, "$name: blocks are well formed, each resource once")
        or diag(join("\n", @{ $o->{errors} }[0 .. min(9, $#{ $o->{errors} })]));
    my $p = plain_keys(run_export($path, %opt));
    is_deeply([sort keys %{ $o->{keys} }], [sort keys %$p],
              "$name: the same resources as the type-organized export");
    return $o;
}

sub min { $_[0] < $_[1] ? $_[0] : $_[1] }

# System level: everything, each resource once (blocks + the unattached files).
my $m = run_export('/fhir/$export?organizeOutputBy=Patient');
ok(!grep({ exists $_->{type} } @{ $m->{output} }), 'output items carry no type');
is($m->{outputOrganizedBy}, 'Patient', 'the manifest says outputOrganizedBy');
my $o = organized($m);
ok(!@{ $o->{errors} }, 'system: blocks well formed') or diag(join("\n", @{ $o->{errors} }));
my $db = $t->db_counts;
my $total = 0;
$total += $_ for values %$db;
is(scalar(keys %{ $o->{keys} }), $total, 'system: every stored resource exactly once');
cmp_ok(scalar(@{ $m->{output} }), '>', 1, 'several files (units over patient ranges)');
my $patients = $t->psql("SELECT count(*) FROM resource WHERE res_type = 'Patient'");
my $units = $t->psql("SELECT count(*) FROM export_unit WHERE blocks = 'patients' AND job_id = "
                     . "(SELECT job_id FROM export_job ORDER BY created_at DESC LIMIT 1)");
is($units, int(($patients + 4) / 5), 'one patients unit per 5 patients');

same_as_plain('Patient level', '/fhir/Patient/$export');
my $group = $t->psql("SELECT res_id FROM resource WHERE res_type = 'Group' ORDER BY res_id LIMIT 1");
same_as_plain("Group $group", "/fhir/Group/$group/\$export");
same_as_plain('_since', '/fhir/$export?_since=2024-01-01T00:00:00Z');
same_as_plain('_typeFilter', '/fhir/Patient/$export?_type=Patient,Observation,Encounter'
              . '&_typeFilter=Observation%3Fcategory%3Dlaboratory');
my $el = same_as_plain('_elements', '/fhir/Patient/$export?_type=Patient,Condition&_elements=subject,gender');
my @pids = split /\n/, $t->psql("SELECT res_id FROM resource WHERE res_type = 'Patient' ORDER BY res_id LIMIT 3");
{
    my $body = sub {
        my (@extra) = @_;
        return encode_json({ resourceType => 'Parameters', parameter => [ @extra,
            map { { name => 'patient', valueReference => { reference => "Patient/$_" } } } @pids ] });
    };
    my $oo = organized(run_export('/fhir/Patient/$export',
                                  body => $body->({ name => 'organizeOutputBy', valueString => 'Patient' })));
    ok(!@{ $oo->{errors} }, 'patient parameter: blocks well formed') or diag(join("\n", @{ $oo->{errors} }));
    my $pp = plain_keys(run_export('/fhir/Patient/$export', body => $body->()));
    is_deeply([sort keys %{ $oo->{keys} }], [sort keys %$pp], 'patient parameter: same resources');
    my %headers = map { $_ => 1 } grep { m{^Patient/} } keys %{ $oo->{keys} };
    is_deeply([sort keys %headers], [sort map { "Patient/$_" } @pids], 'only the listed patients');
}

# Other values: 400 strict, a warning when lenient.
my $res = $t->kickoff('/fhir/$export?organizeOutputBy=Encounter');
$t->is_outcome($res, 400, 'not-supported', 'organizeOutputBy=Encounter: 400 (strict)');
$res = $t->kickoff('/fhir/$export?organizeOutputBy=Nonsense');
$t->is_outcome($res, 400, undef, 'organizeOutputBy=Nonsense: 400');
$res = $t->kickoff('/fhir/$export?_type=Patient&organizeOutputBy=Encounter',
                   headers => { Prefer => 'respond-async, handling=lenient' });
is($res->{status}, 202, 'organizeOutputBy=Encounter lenient: 202');
$m = $t->poll($res->{headers}{'content-location'})->{json};
ok(!exists $m->{outputOrganizedBy}, 'lenient: files by type');
my $errs = $t->download_all($m->{error});
like(encode_json($errs), qr/organizeOutputBy/, 'lenient: the ignored parameter is reported');

# A small file limit: blocks move to the next file, or span files with continuesInFile.
$t->stop_worker;
$t->start_worker('--block-unit-patients', 12, '--max-file-resources', 120);
$m = run_export('/fhir/$export?organizeOutputBy=Patient');
$o = organized($m);
ok(!@{ $o->{errors} }, 'small files: blocks well formed, continuations link up')
    or diag(join("\n", @{ $o->{errors} }));
cmp_ok($o->{spans}, '>', 0, 'some blocks span files (continuesInFile)');
is(scalar(keys %{ $o->{keys} }), $total, 'small files: every resource exactly once');
cmp_ok($o->{max_lines}, '<=', 120, 'no file over 120 lines, headers included');

$t->finish;
done_testing;
